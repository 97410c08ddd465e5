"""sciml: scientific machine learning on fluid flows.

Dataset loaders for Navier-Stokes and turbulence data, a pseudo-spectral solver that generates such data,
neural-operator families, GP and tensor solvers, one training loop and Sobolev-norm evaluators.
"""

from sciml.errors import ConfigError, DataFormatError, SciMLError, SolverError

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataFormatError", "SciMLError", "SolverError", "__version__"]
