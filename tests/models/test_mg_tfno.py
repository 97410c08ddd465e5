"""Multi-grid patching: split/stitch is exact, coarse levels are pooled periodic windows, domain shrinks."""

import pytest
import torch
from torch import nn

from sciml.errors import ConfigError
from sciml.models import ModelContext, build_model
from sciml.models.mg_tfno import MultiGridPatching


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
