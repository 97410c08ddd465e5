"""Classical and structured solvers: pseudo-spectral Navier-Stokes (``navier_stokes``; 3D velocity form in
``navier_stokes_3d`` with the LES closures of ``les``), the mesh-free Chebyshev-Tucker approximator
(``chebyshev_tucker``) and the deep conjugate direction method with its CG / IC-PCG / AMG baselines
(``dcdm``; its grids and operators live in :mod:`sciml.operators.poisson`). Import the modules directly."""
