"""Fine-tuning procedures for trained models (``spectral_refiner``). Import the modules directly."""
