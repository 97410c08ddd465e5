"""One spectral resampling: closed forms, round trips and the Nyquist convention."""

import numpy as np
import pytest
import scipy.signal
import torch

from sciml.datasets.generate import downsample
from sciml.datasets.resample import fourier_resample
from sciml.errors import ConfigError
from sciml.training.resolution import Resampled


def band_limited(n: int, modes: int, seed: int = 0, batch: int = 2) -> torch.Tensor:
    """A random real field on an n x n grid with wavenumbers |k| < modes only."""
    g = torch.Generator().manual_seed(seed)
    spectrum = torch.zeros(batch, n, n, dtype=torch.complex128)
    for kx in range(-modes + 1, modes):
        for ky in range(-modes + 1, modes):
            spectrum[:, kx % n, ky % n] = torch.randn(batch, dtype=torch.complex128, generator=g)
    return torch.fft.ifft2(spectrum, norm="forward").real  # Re: a real field with the same band


@pytest.mark.parametrize(("n", "m"), [(16, 48), (15, 32), (16, 33), (12, 12)])
def test_band_limited_field_up_then_down_returns_itself(n, m):
    field = band_limited(n, (n + 1) // 2)  # |k| < n/2: no Nyquist content
    back = fourier_resample(fourier_resample(field, (m, m)), (n, n))
    torch.testing.assert_close(back, field, rtol=0, atol=1e-12)


def test_closed_form_on_a_finer_grid():
    n, m = 8, 32
    x = lambda k: torch.arange(k, dtype=torch.float64) / k  # noqa: E731
    X, Y = torch.meshgrid(x(n), x(n), indexing="ij")
    f = lambda X, Y: torch.sin(2 * torch.pi * (X + 2 * Y)) + 0.5 * torch.cos(2 * torch.pi * 3 * X)  # noqa: E731
    fine = fourier_resample(f(X, Y), m)
    Xf, Yf = torch.meshgrid(x(m), x(m), indexing="ij")
    torch.testing.assert_close(fine, f(Xf, Yf), rtol=0, atol=1e-12)


def test_upsampling_interpolates_any_field_including_its_nyquist_mode():
    field = torch.randn(3, 16, 16, dtype=torch.float64)  # full band, Nyquist included
    fine = fourier_resample(field, (64, 64))
    torch.testing.assert_close(fine[..., ::4, ::4], field, rtol=0, atol=1e-12)
    # the 1D convention is scipy.signal.resample's
    row = field[0, 0].numpy()
    ours = fourier_resample(field[0, 0], 64, ndim=1).numpy()
    np.testing.assert_allclose(ours, scipy.signal.resample(row, 64))


def test_downsampling_drops_the_small_grids_nyquist_mode():
    n, m = 32, 8
    x = torch.arange(n, dtype=torch.float64) / n
    X, Y = torch.meshgrid(x, x, indexing="ij")
    nyquist = torch.cos(2 * torch.pi * (m // 2) * X)  # k = 4: ambiguous on the 8-point grid
    kept = torch.sin(2 * torch.pi * 3 * Y)
    small = fourier_resample(nyquist + kept, (m, m))
    torch.testing.assert_close(small, kept[::4, ::4], rtol=0, atol=1e-12)


def test_generator_and_evaluation_use_the_same_resampling():
    field = torch.randn(2, 32, 32, dtype=torch.float64)
    torch.testing.assert_close(downsample(field, 8, "spectral"), fourier_resample(field, 8), rtol=0, atol=0)
    samples = [{"x": field[0:1], "y": field[1:2]}]
    item = Resampled(samples, 64)[0]
    torch.testing.assert_close(item["x"], fourier_resample(field[0:1], 64), rtol=0, atol=0)


def test_three_dimensional_and_anisotropic_grids_and_dtype():
    field = torch.randn(2, 6, 8, 10)
    out = fourier_resample(field, (12, 4, 10))
    assert out.shape == (2, 12, 4, 10) and out.dtype == torch.float32
    torch.testing.assert_close(out[:, ::2, :, :].mean(), out.mean(), rtol=0, atol=1e-5)


def test_bad_shapes_are_config_errors():
    with pytest.raises(ConfigError, match="one positive size"):
        fourier_resample(torch.zeros(4, 4), (0, 4))
    with pytest.raises(ConfigError, match="one positive size"):
        fourier_resample(torch.zeros(4), (4, 4))
