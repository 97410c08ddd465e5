"""Classical and structured solvers: pseudo-spectral Navier-Stokes (``navier_stokes``; 3D velocity form in
``navier_stokes_3d`` with the LES closures of ``les``), the mesh-free Chebyshev-Tucker approximator
(``chebyshev_tucker``), pressure Poisson systems on cell-type grids (``poisson``) and the deep conjugate
direction method with its CG / IC-PCG / AMG baselines (``dcdm``). Import the modules directly."""
