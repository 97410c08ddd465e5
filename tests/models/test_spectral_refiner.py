"""Spectral-Refiner's model: exact re-opening of the last spectral layer (the paper architecture's OutConv,
fno3d's last hidden layer), the st_fno interface, errors."""

import warnings

import pytest
import torch
from neuralop.layers.spectral_convolution import SpectralConv
from torch import nn

from sciml.errors import ConfigError
from sciml.models import ModelContext, build_model
from sciml.models.spectral_refiner import (
    RefinedSpaceTimeSpectralConv,
    RefinedSpectralConv,
    find_st_fno,
    full_modes,
    reopen_last_spectral_layer,
)
from sciml.models.st_fno import SpaceTimeSpectralConv
from sciml.models.wrappers import Normalized

warnings.filterwarnings("ignore", category=UserWarning)

N, T_IN, T_OUT = 16, 3, 2


def tiny_model(seed: int = 0, fields: int = 1, architecture: str = "fno3d") -> nn.Module:
    """A small st_fno wrapped with a normalization, as a training run produces it."""
    torch.manual_seed(seed)
    context = ModelContext(in_channels=fields * T_IN, out_channels=fields * T_OUT, grid_shape=(N, N))
    kwargs = {"fields": fields, "modes": 6, "modes_t": 2, "width": 8, "n_layers": 2}
    if architecture == "paper":
        kwargs["modes"] = 4
    st = build_model("st_fno", {"architecture": architecture, **kwargs}, context)
    if architecture == "paper":
        with torch.no_grad():  # a trained-looking spectral bias (it starts at zero)
            st.out_conv.bias.copy_(torch.randn(st.out_conv.bias.shape, dtype=st.out_conv.bias.dtype))
    x_stats = (torch.full((fields * T_IN,), 0.1), torch.full((fields * T_IN,), 0.8))
    y_stats = (torch.full((fields * T_OUT,), 0.1), torch.full((fields * T_OUT,), 0.8))
    return Normalized(st, *x_stats, *y_stats)


# ----------------------------------------------------------------------------- the paper architecture
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n_sets", [1, 3])
@pytest.mark.parametrize("modes", [None, (2, 4, 4), (3, 6, 5)])
def test_reopening_the_out_conv_changes_nothing_before_the_first_step(modes, n_sets, dtype):
    model = tiny_model(architecture="paper")
    x = torch.randn(3, T_IN, N, N)
    with torch.no_grad():
        expected = model(x)
        refined = reopen_last_spectral_layer(model, (N, N), modes, n_sets=n_sets, dtype=dtype)
        torch.testing.assert_close(refined(x.to(dtype)), expected.to(dtype), atol=1e-6, rtol=0)
    st, trained = find_st_fno(refined), find_st_fno(model).out_conv
    layer = st.last_spectral_layer
    assert isinstance(layer, RefinedSpaceTimeSpectralConv) and layer is st.out_conv
    full = full_modes(st, (N, N))
    assert full == (st.latent_steps + 2, N // 2, N // 2)  # every bin of the padded time axis, X/2 and Y/2
    m_t, m_x, m_y = full if modes is None else modes
    assert (
        layer.weight.shape == (n_sets, 1, 1, 2 * m_x, 2 * m_y, m_t) and layer.weight.dtype.to_real() == dtype
    )
    # trained modes copied (the bias scaled by the trained delta), zeros elsewhere
    assert layer.weight.count_nonzero() == n_sets * trained.weight.count_nonzero()
    assert layer.bias.count_nonzero() == n_sets * trained.bias.count_nonzero()
    m, m_t = trained.modes[0], trained.modes[2]  # frequencies 0..m-1 first, -m..-1 last on x and y
    new_weight, old_weight = layer.weight[0, ..., :m_t], trained.weight.to(layer.weight.dtype)
    new_bias, old_bias = layer.bias[0, ..., :m_t], trained.delta * trained.bias.to(layer.bias.dtype)
    for cx, cy in [(slice(None, m), slice(None, m)), (slice(-m, None), slice(-m, None))]:
        torch.testing.assert_close(new_weight[..., cx, cy, :], old_weight[..., cx, cy, :], rtol=0, atol=0)
        torch.testing.assert_close(new_bias[cx, cy], old_bias[cx, cy], rtol=0, atol=1e-7)
    assert layer.delta == 1.0
    trainable = {name for name, p in refined.named_parameters() if p.requires_grad}
    assert trainable == {"model.out_conv.weight", "model.out_conv.bias"}
    assert isinstance(find_st_fno(model).out_conv, SpaceTimeSpectralConv)  # the given model is untouched
    assert not isinstance(find_st_fno(model).out_conv, RefinedSpaceTimeSpectralConv)


def test_the_reopened_out_conv_acts_on_modes_the_trained_one_truncated():
    model = tiny_model(architecture="paper")
    x = torch.randn(1, T_IN, N, N)
    refined = reopen_last_spectral_layer(model, (N, N))
    layer = find_st_fno(refined).out_conv
    with torch.no_grad():
        before = refined(x)
        layer.bias[0, N // 2 - 1, 1, 0] = 1.0  # k_x = N/2 - 1 (the trained layer stops at 3), k_y = 1
        change = refined(x) - before
    # a real Fourier mode of that frequency in x and y, the same in every output frame
    spectrum = torch.fft.rfft2(change[0])
    peak = spectrum.abs().flatten(1).argmax(dim=1)
    assert (peak == (N // 2 - 1) * (N // 2 + 1) + 1).all()
    assert change.abs().max() > 0


@pytest.mark.parametrize("modes", [None, (2, 6, 6), (3, 10, 12)])
def test_reopened_model_reproduces_the_trained_model(modes):
    model = tiny_model()
    x = torch.randn(3, T_IN, N, N)
    with torch.no_grad():
        expected = model(x)
        refined = reopen_last_spectral_layer(model, (N, N), modes)
        torch.testing.assert_close(refined(x), expected, atol=1e-6, rtol=0)
    layer = find_st_fno(refined).last_spectral_layer
    assert isinstance(layer, RefinedSpectralConv)
    full = (T_IN, N, N // 2 + 1) if modes is None else (modes[0], modes[1], modes[2] // 2 + 1)
    assert tuple(layer.weight.shape[3:]) == full
    trained = find_st_fno(model).last_spectral_layer.weight.tensor
    assert layer.weight.count_nonzero() == trained.count_nonzero()  # zeros outside the trained block
    trainable = {name for name, p in refined.named_parameters() if p.requires_grad}
    assert trainable == {"model.fno.fno_blocks.convs.1.weight", "model.fno.fno_blocks.convs.1.bias"}
    assert isinstance(find_st_fno(model).last_spectral_layer, SpectralConv)  # the given model is untouched


def test_last_spectral_layer_is_the_output_side_fourier_layer_of_the_forward():
    st = find_st_fno(tiny_model())
    x = torch.randn(2, T_IN, N, N)
    layer = st.last_spectral_layer
    assert isinstance(layer, SpectralConv) and layer is st.fno.fno_blocks.convs[-1]
    seen = []
    layer.register_forward_hook(lambda module, args, output: seen.append(output.shape))
    with torch.no_grad():
        before = st(x)
    assert seen == [(2, 8, T_OUT, N, N)]  # maps the latent trajectory onto the t_out output frames

    class Zero(nn.Module):
        def forward(self, v, output_shape=None):
            return v.new_zeros((v.shape[0], v.shape[1], *output_shape))

        def transform(self, v, output_shape=None):
            return layer.transform(v, output_shape=output_shape)

    st.replace_last_spectral_layer(Zero())
    assert isinstance(st.last_spectral_layer, Zero)
    with torch.no_grad():
        assert not torch.allclose(st(x), before)


def test_reopening_errors_of_the_paper_architecture():
    model = tiny_model(architecture="paper")
    x = torch.randn(4, T_IN, N, N)
    with pytest.raises(ConfigError, match="trained layer"):
        reopen_last_spectral_layer(model, (N, N), (1, 4, 4))  # fewer time bins than trained (2)
    with pytest.raises(ConfigError, match="grid"):
        reopen_last_spectral_layer(model, (N, N), (2, N, 4))  # N modes per sign on an N-point axis
    with pytest.raises(ConfigError, match="three integers"):
        reopen_last_spectral_layer(model, (N, N), (2.0, 4, 4))
    per_window = reopen_last_spectral_layer(model, (N, N), n_sets=4)
    with pytest.raises(ConfigError, match="per window"):
        per_window(x[:2])
    with pytest.raises(ConfigError, match="already re-opened"):
        reopen_last_spectral_layer(per_window, (N, N))
    assert per_window(x).shape == (4, T_OUT, N, N)


def test_reopening_errors():
    model = tiny_model()
    x = torch.randn(4, T_IN, N, N)
    with pytest.raises(ConfigError, match="st_fno"):
        reopen_last_spectral_layer(nn.Linear(3, 3), (N, N))
    fno = build_model("fno", {"modes": 4, "width": 8}, ModelContext(1, 1, (N, N)))
    with pytest.raises(ConfigError, match="st_fno"):
        reopen_last_spectral_layer(fno, (N, N))
    with pytest.raises(ConfigError, match="modes"):
        reopen_last_spectral_layer(model, (N, N), (1, 6, 6))  # fewer than trained
    with pytest.raises(ConfigError, match="modes"):
        reopen_last_spectral_layer(model, (N, N), (3, 2 * N, N))  # beyond the grid
    with pytest.raises(ConfigError, match="float32 or float64"):
        reopen_last_spectral_layer(model, (N, N), dtype=torch.float16)
    with pytest.raises(ConfigError, match="n_sets"):
        reopen_last_spectral_layer(model, (N, N), n_sets=0)
    per_window = reopen_last_spectral_layer(model, (N, N), n_sets=4)
    with pytest.raises(ConfigError, match="per window"):
        per_window(x[:2])
    with pytest.raises(ConfigError, match="already re-opened"):
        reopen_last_spectral_layer(per_window, (N, N))
