"""Multi-grid patching: split/stitch is exact, coarse levels are pooled periodic windows, domain shrinks."""

import pytest
import torch
from neuralop.layers.padding import DomainPadding
from neuralop.training.patching import MultigridPatching2D
from torch import nn

from sciml.errors import ConfigError
from sciml.models import ModelContext, build_model
from sciml.models.mg_tfno import MultiGridPatching
from sciml.models.registry import SpectralLossModel
from sciml.models.wrappers import Normalized
from sciml.training.config import config_from_mapping
from sciml.training.trainer import Trainer


class FirstChannels(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z[:, : self.n]


@pytest.mark.parametrize(("levels", "padding", "size"), [(1, 0.25, 16), (2, 0.25, 32), (2, 0.0, 16)])
def test_split_then_stitch_reproduces_the_field(levels, padding, size):
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    mg = MultiGridPatching(FirstChannels(3), levels, padding)
    torch.testing.assert_close(mg(x), x, rtol=0, atol=0)


def test_patch_neighbourhood_wraps_periodically_and_levels_are_pooled():
    size, levels = 16, 1
    x = torch.arange(size * size, dtype=torch.float64).reshape(1, 1, size, size)
    mg = MultiGridPatching(FirstChannels(1), levels, padding=0.25)
    inputs = mg.split(x)  # patches of 8 with a pad of 2: side 12, two channels (patch, level 1)
    assert inputs.shape == (4, 2, 12, 12)
    tiled = x[0, 0].repeat(3, 3)  # the periodic field around the box; the origin sits at (16, 16)
    # patch (0, 0) starts 2 cells before the origin: periodic wrap
    torch.testing.assert_close(inputs[0, 0], tiled[14:26, 14:26])
    # level 1: the 24-cell window centred on the patch (8 cells before it), 2x2 average pooled
    window = tiled[8:32, 8:32]
    pooled = window.reshape(12, 2, 12, 2).mean(dim=(1, 3))
    torch.testing.assert_close(inputs[0, 1], pooled)


def test_mg_tfno_shrinks_the_input_domain_and_learns_from_the_registry():
    context = ModelContext(in_channels=1, out_channels=1, grid_shape=(64, 64), periodic=(True, True))
    model = build_model(
        "mg_tfno", {"levels": 2, "model_kwargs": {"modes": 6, "width": 8, "n_layers": 2}}, context
    )
    inputs = model.split(torch.randn(1, 1, 64, 64))
    q = inputs.shape[-1]
    assert (64 / q) ** 2 >= 4  # at least 4x smaller input domain per patch (two levels: ~7x)
    assert inputs.shape[1] == 3  # split() of a 1-channel field: the patch and two coarse levels
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, 1, 64, 64)  # with the 4 position channels


def test_bad_arguments():
    context = ModelContext(in_channels=1, out_channels=1, grid_shape=(16, 16), periodic=(True, True))
    with pytest.raises(ConfigError, match="levels"):
        build_model("mg_tfno", {"levels": 0}, context)
    walls = ModelContext(in_channels=1, out_channels=1, grid_shape=(16, 16), periodic=(False, False))
    with pytest.raises(ConfigError, match="periodic"):
        build_model("mg_tfno", {}, walls)
    model = build_model(
        "mg_tfno", {"levels": 1, "model_kwargs": {"modes": 2, "width": 4, "n_layers": 1}}, context
    )
    with pytest.raises(ConfigError, match="divisible"):
        model(torch.randn(1, 1, 17, 17))


def test_mg_around_t1_refuses_the_spectral_loss_clearly():
    # the output is cropped from padded patches: no loss on the inner spectra is the full-field loss, so
    # the wrapper does not claim the contract its inner T1 has, and the Trainer says why
    context = ModelContext(in_channels=1, out_channels=1, grid_shape=(16, 16), periodic=(True, True))
    t1 = {"modes": 4, "width": 8, "n_layers": 1}
    model = build_model("mg_tfno", {"levels": 1, "model": "t1", "model_kwargs": t1}, context)
    assert isinstance(model.inner, SpectralLossModel) and not isinstance(model, SpectralLossModel)
    wrapped = Normalized(model, [0.0], [1.0], [0.0], [1.0])
    assert not isinstance(wrapped, SpectralLossModel)
    config = config_from_mapping(
        {
            "data": {"path": "unread.hdf5", "batch_size": 1},
            "model": {"name": "mg_tfno", "model": "t1", "model_kwargs": t1},
            "train": {"loss": "spectral", "device": "cpu", "progress": False},
        },
        name="mg-t1",
    )
    samples = [{"x": torch.randn(1, 16, 16), "y": torch.randn(1, 16, 16)}]
    with pytest.raises(ConfigError, match=r"model 'mg_tfno' has none .*mg_tfno is none even around t1"):
        Trainer(wrapped, config, samples)


# --- neuraloperator-equivalent options, coarse reductions, wrap-around windows, inner domain padding ---

NEURALOP_EQUIVALENT = {"padding_relative_to": "field", "coarse": "subsample", "global_position": False}
TINY_TFNO = {"modes": 2, "width": 4, "n_layers": 1}


def periodic_context(size: int, channels: int = 2) -> ModelContext:
    return ModelContext(
        in_channels=channels, out_channels=channels, grid_shape=(size, size), periodic=(True, True)
    )


@pytest.mark.parametrize(
    ("levels", "fraction", "size"),
    # (2, 0.25, 32): the level-2 window is 96 cells on a 32-cell grid, refused before wrap-around
    [(1, 0.078125, 32), (1, 0.25, 16), (2, 0.25, 32), (2, 0.078125, 64)],
)
def test_neuralop_equivalent_options_patch_and_stitch_like_multigrid_patching_2d(levels, fraction, size):
    context = periodic_context(size)
    options = {"levels": levels, "padding": fraction, **NEURALOP_EQUIVALENT, "model_kwargs": TINY_TFNO}
    model = build_model("mg_tfno", options, context).eval()
    reference = MultigridPatching2D(nn.Identity(), levels=levels, padding_fraction=fraction)
    x = torch.randn(3, 2, size, size, dtype=torch.float64)
    target = torch.randn(3, 2, size, size, dtype=torch.float64)
    reference_patches, _ = reference.patch(x, target)
    # same patch order (batch, patch row, patch column) and channels (patch, level 1..L): no reordering
    patches = model.split(x)
    assert patches.shape == reference_patches.shape
    torch.testing.assert_close(patches, reference_patches, rtol=0, atol=0)
    outputs = torch.randn(patches.shape[0], 2, *patches.shape[-2:], dtype=torch.float64)
    reference_field, _ = reference.unpatch(outputs, target)
    torch.testing.assert_close(model.stitch(outputs, 3, size), reference_field, rtol=0, atol=0)
    with torch.no_grad():  # and the whole pipeline around the same inner model
        reference_prediction, _ = reference.unpatch(model.inner(reference_patches.float()), target)
        torch.testing.assert_close(model(x.float()), reference_prediction, rtol=0, atol=0)


def test_subsampled_and_averaged_coarse_levels_by_hand():
    # 8x8 grid, one level: 2x2 patches of 4 with a 1-cell neighbourhood (q = 6); the level-1 window is 12
    # cells starting 4 cells before the patch. On x[i, j] = 10 i + j a window's value is 10 row + column.
    x = (10 * torch.arange(8.0)[:, None] + torch.arange(8.0)).reshape(1, 1, 8, 8)
    sampled = {0: [4, 6, 0, 2, 4, 6], 1: [0, 2, 4, 6, 0, 2]}  # rows -4, -2, ... wrapped, patch row 0 / 1
    averaged = {0: [4.5, 6.5, 0.5, 2.5, 4.5, 6.5], 1: [0.5, 2.5, 4.5, 6.5, 0.5, 2.5]}  # mean of 2 rows
    for coarse, expected in (("subsample", sampled), ("average", averaged)):
        patches = MultiGridPatching(FirstChannels(1), 1, padding=0.25, coarse=coarse).split(x)
        assert patches.shape == (4, 2, 6, 6)
        for index, (row, col) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
            rows, cols = torch.tensor(expected[row]), torch.tensor(expected[col])
            hand = (10 * rows[:, None] + cols).to(x.dtype)
            torch.testing.assert_close(patches[index, 1], hand, rtol=0, atol=0)


@pytest.mark.parametrize("coarse", ["subsample", "average"])
def test_windows_wider_than_the_grid_wrap_around(coarse):
    # 8x8 grid, 4x4 patches of 2 with a 4-cell neighbourhood: q = 10 and coarse windows of 20 and 40 cells
    size, levels, side, pad = 8, 2, 2, 4
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    mg = MultiGridPatching(nn.Identity(), levels, 0.5, padding_relative_to="field", coarse=coarse)
    assert mg.geometry(size) == (4, side, pad)
    q = side + 2 * pad
    patches = mg.split(x).reshape(2, 4, 4, 3 * (levels + 1), q, q)
    for level in range(levels + 1):
        scale, width = 2**level, q * 2**level
        before = (width - side) // 2
        for row in range(4):
            for col in range(4):
                # roll the window's first cell to the origin, repeat the field until the window fits
                rolled = torch.roll(x, shifts=(before - row * side, before - col * side), dims=(-2, -1))
                window = rolled.repeat(1, 1, 5, 5)[..., :width, :width]
                if coarse == "subsample":
                    expected = window[..., ::scale, ::scale]
                else:
                    expected = window.reshape(2, 3, q, scale, q, scale).mean(dim=(3, 5))
                found = patches[:, row, col, 3 * level : 3 * (level + 1)]
                torch.testing.assert_close(found, expected, rtol=0, atol=1e-15 if level else 0)


def test_explicit_default_options_change_nothing():
    context = periodic_context(32, channels=1)
    base = {"levels": 2, "padding": 0.25, "model_kwargs": {"modes": 4, "width": 8, "n_layers": 2}}
    defaults = {"padding_relative_to": "patch", "coarse": "average", "inner_domain_padding": None}
    x = torch.randn(2, 1, 32, 32)
    outputs = []
    for options in ({}, defaults, {"coarse": "subsample"}):
        torch.manual_seed(0)
        model = build_model("mg_tfno", {**base, **options}, context).eval()
        with torch.no_grad():
            outputs.append(model(x))
    torch.testing.assert_close(outputs[1], outputs[0], rtol=0, atol=0)
    assert not torch.equal(outputs[2], outputs[0])  # the option does act


def test_inner_domain_padding_reaches_the_inner_fno():
    context = periodic_context(16, channels=1)
    options = {"levels": 1, "padding": 0.25, "model_kwargs": TINY_TFNO}
    model = build_model("mg_tfno", {**options, "inner_domain_padding": 0.078125}, context)
    assert isinstance(model.inner.domain_padding, DomainPadding)
    assert model.inner.domain_padding.domain_padding == 0.078125
    assert build_model("mg_tfno", options, context).inner.domain_padding is None
    assert model(torch.randn(2, 1, 16, 16)).shape == (2, 1, 16, 16)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"padding_relative_to": "grid"}, "padding_relative_to 'grid' is not one of patch, field"),
        ({"coarse": "max"}, "coarse 'max' is not one of average, subsample"),
        ({"inner_domain_padding": 0.1, "model": "t1"}, "model 't1' has none"),
        ({"inner_domain_padding": 0.1, "model_kwargs": {"domain_padding": 0.2}}, "give one"),
        ({"inner_domain_padding": -0.1}, "inner_domain_padding must be >= 0"),
        ({"padding": 1.5, "padding_relative_to": "field"}, "fraction of the field side"),
    ],
)
def test_bad_patching_options(options, message):
    with pytest.raises(ConfigError, match=message):
        build_model("mg_tfno", {"levels": 1, **options}, periodic_context(16, channels=1))
