"""Classical and structured solvers: pseudo-spectral Navier-Stokes (``navier_stokes``; 3D velocity form in
``navier_stokes_3d`` with the LES closures of ``les``) and the mesh-free Chebyshev-Tucker approximator
(``chebyshev_tucker``). Import the modules directly."""
