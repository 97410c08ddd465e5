"""GP-HM on a 1-D Poisson problem with a high-frequency solution: u'' = f on [0, 2 pi], u = sin(100 x).

The default fit is exact: for the kernel found from the spectrum of f, the collocation least-squares
problem is solved directly (Gauss-Newton for a nonlinear residual), with no learning rate to tune.
"""

import math
import time

import torch

from sciml.solvers.gp import GPSolver
from sciml.solvers.gp_problem import PDEProblem


def exact(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(100 * x[..., 0])


def source(x: torch.Tensor) -> torch.Tensor:  # f = u''
    return -(100**2) * torch.sin(100 * x[..., 0])


problem = PDEProblem(
    box=[(0.0, 2 * math.pi)],
    residual=lambda d, x: d["xx"] - source(x),  # d["u"], d["x"], d["xx"]: u and its derivatives on the grid
    boundary=exact,  # Dirichlet data on the end points
)
start = time.perf_counter()
solver = GPSolver(problem, [400])  # 400 collocation points, Gaussian-mixture kernel
solution = solver.fit()
seconds = time.perf_counter() - start

x = torch.linspace(0, 2 * math.pi, 501, dtype=torch.float64)[:, None]  # anywhere, not only on the grid
error = torch.linalg.norm(solution(x) - exact(x)) / torch.linalg.norm(exact(x))
print(f"measured frequency: {solver.frequency_bands[0].peaks} cycles per unit length (100 / 2 pi = 15.9)")
print(f"relative L2 error {error:.2e} in {seconds:.1f} s")
assert error < 2e-3

# derivatives of the GP mean come with it: u'' against f
second = solution(x, "xx")
assert torch.linalg.norm(second - source(x)) / torch.linalg.norm(source(x)) < 1e-2
