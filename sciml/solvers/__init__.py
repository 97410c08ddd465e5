"""Classical and structured solvers: pseudo-spectral Navier-Stokes (``navier_stokes``) and the mesh-free
Chebyshev-Tucker approximator (``chebyshev_tucker``). Import the modules directly."""
