"""Spatiotemporal FNO: time-major window layout, residual on the last frame, clear errors."""

import pytest
import torch

from sciml.errors import ConfigError
from sciml.models import ModelContext, build_model


def test_zero_network_returns_the_last_frame_for_every_output_frame():
    context = ModelContext(in_channels=2 * 4, out_channels=2 * 3, grid_shape=(16, 16))
    model = build_model("st_fno", {"fields": 2, "modes": 4, "modes_t": 2, "width": 8, "n_layers": 2}, context)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    x = torch.randn(3, 8, 16, 16)
    y = model(x)
    last = x[:, -2:]  # frame t_in - 1, both fields (time-major channels)
    torch.testing.assert_close(y, last.repeat(1, 3, 1, 1))


def test_bad_arguments():
    context = ModelContext(in_channels=5, out_channels=2, grid_shape=(16, 16))
    with pytest.raises(ConfigError, match="must divide"):
        build_model("st_fno", {"fields": 2}, context)
    with pytest.raises(ConfigError, match="modes_t"):
        build_model("st_fno", {"modes_t": 9}, context)
