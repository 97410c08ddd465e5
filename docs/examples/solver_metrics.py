"""The Navier-Stokes solver and the Sobolev-norm metrics: a resolution study measured in H^-1, L2 and H1.

The same initial vorticity is solved on 32^2 and on 64^2 (FNO forcing, nu = 1e-3, up to t = 2); the coarse
solution is compared with the fine one brought down to 32^2 by spectral resampling. The H1 error weighs
the small scales (where the coarse grid is worst) most, H^-1 the large ones.
"""

import torch

from sciml.datasets.resample import fourier_resample
from sciml.metrics import energy_spectrum, kinetic_energy, sobolev_error, sobolev_norm
from sciml.solvers.navier_stokes import NavierStokes2D, gaussian_random_field

w0 = gaussian_random_field(batch=2, resolution=64, seed=0, dtype=torch.float64)  # FNO initial conditions
fine = NavierStokes2D(resolution=64, viscosity=1e-3, forcing="fno", dt=1e-2, stepper="heun-cn")
coarse = NavierStokes2D(resolution=32, viscosity=1e-3, forcing="fno", dt=1e-2, stepper="heun-cn")
w_fine = fine.simulate(w0, t_final=2.0, record_every=1.0).vorticity  # [2, 3, 64, 64]: t = 0, 1, 2
w_coarse = coarse.simulate(fourier_resample(w0, 32), t_final=2.0, record_every=1.0).vorticity

reference = fourier_resample(w_fine[:, -1], 32)  # [2, 32, 32]
errors = {s: sobolev_error(w_coarse[:, -1], reference, s=s, lengths=1.0) for s in (-1, 0, 1)}
for s, error in errors.items():
    print(f"relative H^{s} error of the 32^2 solve at t = 2: {error.mean():.2e}")
assert (errors[-1] < errors[0]).all() and (errors[0] < errors[1]).all()
assert errors[1].max() < 1e-3

# norms, energy and spectra of the fine solution
print("H^1 norm of w(t=2):", sobolev_norm(w_fine[:, -1], s=1, lengths=1.0))
u, v = fine.velocity(w_fine[:, -1])
spectrum = energy_spectrum(u, v, lengths=1.0)  # [2, shells]
energy = kinetic_energy(u, v, lengths=1.0)
print(f"kinetic energy {energy.mean():.3e}, spectrum over {spectrum.shape[-1]} shells")
assert torch.allclose(spectrum.sum(-1), energy, rtol=1e-6)  # Parseval: the shells hold all the energy
