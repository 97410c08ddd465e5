"""Mesh-free Chebyshev-Tucker approximation of a 3-D function: evaluate anywhere, on grids, differentiate,
integrate.

f(x, y, z) = exp(-(x^2 + y^2 + z^2)) + sin(x + y + z) on [-1, 1]^3 has Tucker rank 3 per mode; its
integral over the cube is (sqrt(pi) erf(1))^3 (the sine part is odd).
"""

import math

import numpy as np

from sciml.solvers.chebyshev_tucker import chebyshev_tucker


def f(x, y, z):  # called once, on the broadcastable Chebyshev grid (numpy arrays here)
    return np.exp(-(x**2 + y**2 + z**2)) + np.sin(x + y + z)


approx = chebyshev_tucker(f, box=[(-1, 1)] * 3, degree=24, tol=1e-10)
print(f"degrees {approx.degrees}, Tucker ranks {approx.ranks}, compression {approx.compression_ratio:.0f}x")
assert approx.ranks == (3, 3, 3)

points = np.random.default_rng(0).uniform(-1, 1, size=(1000, 3))  # anywhere in the box, no mesh
error = np.abs(approx(points) - f(*points.T)).max()
print(f"max error at 1000 random points: {error:.1e}")
assert error < 1e-9

# derivatives and integrals are exact operations on the Chebyshev factors
d_dx = approx.derivative(axis=0)
exact_dx = -2 * points[:, 0] * np.exp(-(points**2).sum(axis=1)) + np.cos(points.sum(axis=1))
assert np.abs(d_dx(points) - exact_dx).max() < 1e-7
integral = approx.integral()
exact_integral = (math.sqrt(math.pi) * math.erf(1.0)) ** 3
print(f"integral {integral:.12f} (exact {exact_integral:.12f})")
assert abs(integral - exact_integral) < 1e-10

# on a tensor grid the result is a Tucker tensor (core and one factor per axis), never formed in full
axis = np.linspace(-1, 1, 50)
grid = approx.on_grid(axis, axis, axis)
print("on a 50^3 grid: core", grid.core.shape, "factors", [u.shape for u in grid.factors])
assert np.abs(grid.full() - f(*np.meshgrid(axis, axis, axis, indexing="ij"))).max() < 1e-9
