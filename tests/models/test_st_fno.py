"""Spatiotemporal FNO, both architectures: time-major window layout, residual on the last frame, the paper's
positional features, zero-padded time in the output convolution, parameter count, clear errors."""

import math

import pytest
import torch

from sciml.errors import ConfigError
from sciml.models import ModelContext, build_model
from sciml.models.st_fno import SpaceTimeFNO, SpaceTimeSpectralConv, SpatiotemporalFNO, positional_features

PAPER_SMALL = {"modes": 4, "modes_t": 2, "width": 8, "n_layers": 2}


def paper_model(t_in: int = 4, t_out: int = 3, n: int = 16, seed: int = 0, **kwargs) -> SpaceTimeFNO:
    torch.manual_seed(seed)
    return build_model("st_fno", {**PAPER_SMALL, **kwargs}, ModelContext(t_in, t_out, (n, n)))


# ------------------------------------------------------------------------------------------------ fno3d
def test_fno3d_zero_network_returns_the_last_frame_for_every_output_frame():
    context = ModelContext(in_channels=2 * 4, out_channels=2 * 3, grid_shape=(16, 16))
    kwargs = {"architecture": "fno3d", "fields": 2, "modes": 4, "modes_t": 2, "width": 8, "n_layers": 2}
    model = build_model("st_fno", kwargs, context)
    assert isinstance(model, SpatiotemporalFNO)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    x = torch.randn(3, 8, 16, 16)
    y = model(x)
    last = x[:, -2:]  # frame t_in - 1, both fields (time-major channels)
    torch.testing.assert_close(y, last.repeat(1, 3, 1, 1))


# ------------------------------------------------------------------------------------------------ paper
def test_paper_is_the_default_and_returns_the_last_frame_plus_the_out_conv():
    model = paper_model()
    assert isinstance(model, SpaceTimeFNO) and model.last_spectral_layer is model.out_conv
    x = torch.randn(2, 4, 16, 16)
    y = model(x)
    assert y.shape == (2, 3, 16, 16)
    assert not torch.allclose(y, x[:, -1:].expand_as(y))  # a trained-looking increment
    with torch.no_grad():  # without the output convolution only the last input frame is left
        model.out_conv.weight.zero_()
        model.out_conv.bias.zero_()
    torch.testing.assert_close(model(x), x[:, -1:].expand(2, 3, 16, 16), rtol=0, atol=0)
    assert model(torch.randn(1, 4, 32, 32)).shape == (1, 3, 32, 32)  # zero-shot on a finer grid


def test_the_out_conv_sees_the_last_input_frame_and_the_latent_trajectory():
    model = paper_model()
    x = torch.randn(2, 4, 16, 16)
    seen = []
    model.out_conv.register_forward_hook(lambda module, args, output: seen.append(args[0]))
    with torch.no_grad():
        model(x)
        latent = model.latent(x)
    u = seen[0]  # [B, 1, X, Y, 1 + latent_steps]: the last input frame first, then the reduced latent
    assert u.shape == (2, 1, 16, 16, 1 + model.latent_steps)
    torch.testing.assert_close(u[:, 0, :, :, 0], x[:, -1])
    torch.testing.assert_close(u[..., 1:], latent)


def test_positional_features_are_the_references():
    width, (nx, ny, nt), beta = 7, (4, 5, 3), 0.5
    pe = positional_features(width, (nx, ny, nt), beta, torch.float64, torch.device("cpu"))
    assert pe.shape == (1, width, nx, ny, nt)
    i, j, k = 2, 3, 1  # one grid point, by hand: x = i/(nx-1), y = j/(ny-1), t = (k+1)/100
    t = (k + 1) / 100
    expected = [i / (nx - 1), j / (ny - 1), t]
    expected += [math.exp(beta * t) * f(math.pi * m * t) for m, f in enumerate([math.sin, math.cos] * 2, 1)]
    assert pe[0, :, i, j, k].tolist() == pytest.approx(expected, rel=1e-12)


def test_positional_features_break_translation_equivariance():
    # An FNO without positional channels commutes with periodic shifts; the paper's model sees (x, y).
    model = paper_model()
    x = torch.randn(1, 4, 16, 16)
    with torch.no_grad():
        increment = model(x) - x[:, -1:]
        difference = model(torch.roll(x, 3, dims=-1)) - torch.roll(model(x), 3, dims=-1)
    assert difference.abs().max() > 1e-2 * increment.abs().max()  # measured: 5e-2


def test_out_conv_zero_pads_time_instead_of_wrapping_around():
    torch.manual_seed(0)
    padded = SpaceTimeSpectralConv(1, 1, 4, 4, 3, time_padding=True)
    periodic = SpaceTimeSpectralConv(1, 1, 4, 4, 3, time_padding=False)
    with torch.no_grad():
        periodic.weight.copy_(padded.weight)
    v = torch.randn(2, 1, 16, 16, 5)
    out_steps = 7
    y = padded(v, out_steps=out_steps)
    assert y.shape == (2, 1, 16, 16, out_steps)
    # exactly: the periodic convolution of [zeros, v] on out_steps + 5 steps, of which the last out_steps
    zero_padded = torch.cat([torch.zeros_like(v), v], dim=-1)
    torch.testing.assert_close(y, periodic(zero_padded, out_steps=out_steps + 5)[..., -out_steps:])
    # a periodic time axis maps a time-constant input to a time-constant output; zero padding does not
    constant = v[..., :1].expand_as(v)
    assert periodic(constant, out_steps=out_steps).std(dim=-1).max() < 1e-6
    assert padded(constant, out_steps=out_steps).std(dim=-1).max() > 1e-3
    model = paper_model()
    assert model.out_conv.time_padding and model.out_time_length == 2 * (model.latent_steps + 1)


def test_paper_defaults_count_the_references_parameters():
    # 9,242,461: the count of torch-cfd @475c738 SFNO(12, 12, 5, 20) (4 spectral layers), instantiated
    model = build_model("st_fno", {}, ModelContext(10, 40, (64, 64)))
    real = sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())
    assert real == 9_242_461
    assert (model.latent_steps, model.width, len(model.convs) + 1) == (10, 20, 4)
    assert model.out_conv.modes == (12, 12, 5) and model.out_conv.delta == 0.1


def test_bad_arguments():
    context = ModelContext(in_channels=5, out_channels=2, grid_shape=(16, 16))
    with pytest.raises(ConfigError, match="must divide"):
        build_model("st_fno", {"fields": 2}, context)
    with pytest.raises(ConfigError, match="modes_t"):
        build_model("st_fno", {"architecture": "fno3d", "modes_t": 9}, context)
    with pytest.raises(ConfigError, match="architecture"):
        build_model("st_fno", {"architecture": "sfno"}, context)
    context2 = ModelContext(in_channels=8, out_channels=6, grid_shape=(16, 16))
    with pytest.raises(ConfigError, match="one field"):
        build_model("st_fno", {"fields": 2, **PAPER_SMALL}, context2)
    with pytest.raises(ConfigError, match="beta only apply to architecture 'paper'"):
        build_model("st_fno", {"architecture": "fno3d", "fields": 2, "beta": 0.5}, context2)
    with pytest.raises(ConfigError, match=r"modes_t = 5 .* t_in >= 8"):
        build_model("st_fno", {"modes": 4}, context)  # 5 time bins need 8 input frames
    with pytest.raises(ConfigError, match="activation"):
        build_model("st_fno", {**PAPER_SMALL, "activation": "swish"}, context)
    with pytest.raises(ConfigError, match="n_layers"):
        build_model("st_fno", {**PAPER_SMALL, "n_layers": 1}, context)
    model = build_model("st_fno", {**PAPER_SMALL, "modes": 8}, context)
    with pytest.raises(ConfigError, match="8 modes per sign on the x axis need at least 16"):
        model(torch.randn(1, 5, 8, 8))
