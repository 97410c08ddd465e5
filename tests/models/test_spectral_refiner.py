"""Spectral-Refiner's model: exact re-opening of the last spectral layer, the st_fno interface, errors."""

import ast
import warnings
from pathlib import Path

import pytest
import torch
from neuralop.layers.spectral_convolution import SpectralConv
from torch import nn

import sciml.models
from sciml.errors import ConfigError
from sciml.models import ModelContext, build_model
from sciml.models.spectral_refiner import RefinedSpectralConv, find_st_fno, reopen_last_spectral_layer
from sciml.models.wrappers import Normalized

warnings.filterwarnings("ignore", category=UserWarning)

N, T_IN, T_OUT = 16, 3, 2


def tiny_model(seed: int = 0, fields: int = 1) -> nn.Module:
    """A small st_fno wrapped with a normalization, as a training run produces it."""
    torch.manual_seed(seed)
    context = ModelContext(in_channels=fields * T_IN, out_channels=fields * T_OUT, grid_shape=(N, N))
    kwargs = {"fields": fields, "modes": 6, "modes_t": 2, "width": 8, "n_layers": 2}
    st = build_model("st_fno", kwargs, context)
    x_stats = (torch.full((fields * T_IN,), 0.1), torch.full((fields * T_IN,), 0.8))
    y_stats = (torch.full((fields * T_OUT,), 0.1), torch.full((fields * T_OUT,), 0.8))
    return Normalized(st, *x_stats, *y_stats)


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


def test_the_model_family_imports_no_solver_and_no_procedure():
    for path in (Path(sciml.models.__file__).parent).glob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        upward = [m for m in imported if m.startswith(("sciml.solvers", "sciml.finetune"))]
        assert upward == [], f"{path.name} imports {upward}"
