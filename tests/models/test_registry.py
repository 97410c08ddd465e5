"""Every registered model family: builds from a config section, runs forward and backward at two
resolutions, and round-trips a checkpoint (outputs differ before loading, match after)."""

import pytest
import torch

from sciml.errors import ConfigError
from sciml.models import ModelContext, available_models, build_model
from sciml.training.checkpoint import load_checkpoint, save_checkpoint, tensor_state_dict

SMALL = {
    "fno": {"modes": 4, "width": 8, "n_layers": 2},
    "tfno": {"modes": 4, "width": 8, "n_layers": 2, "rank": 0.2},
    "deeponet": {"sensors": 8, "basis": 16, "branch_widths": [32], "trunk_widths": [32]},
    # the spec's 1e-8 head init makes untrained outputs ~1e-15: too small to tell two seeds apart
    "t1": {"modes": 4, "width": 8, "n_layers": 2, "head_init_std": 0.01},
    "mg_tfno": {"levels": 1, "model_kwargs": {"modes": 4, "width": 8, "n_layers": 2, "rank": 0.2}},
    "st_fno": {"modes": 4, "modes_t": 2, "width": 8, "n_layers": 2},
    "lsm": {"width": 8, "levels": 2, "heads": 4, "patch_size": 2, "num_basis": 4, "head_width": 16},
    "ifactformer": {"dim": 8, "heads": 2, "dim_head": 4, "kernel_multiplier": 2, "n_layers": 2},
    "ifno": {"modes": 4, "width": 8, "n_layers": 2},
}
CONTEXT = ModelContext(in_channels=3, out_channels=2, grid_shape=(16, 16), domain_lengths=(1.0, 1.0))


OWN_DATA = {"dcdm"}  # not a flow-field family: its input is a Poisson right-hand side and cell codes
# (built, run and round-tripped in tests/models/test_dcdm_model.py)


@pytest.mark.parametrize("name", [f for f in available_models() if f not in OWN_DATA])
def test_family_builds_runs_and_round_trips(name, tmp_path):
    torch.manual_seed(0)
    model = build_model(name, SMALL.get(name, {}), CONTEXT)
    for resolution in (16, 32):
        x = torch.randn(2, 3, resolution, resolution, requires_grad=True)
        y = model(x)
        assert y.shape == (2, 2, resolution, resolution)
        y.square().mean().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    path = save_checkpoint(tmp_path / "m.pt", {"model": tensor_state_dict(model)})
    torch.manual_seed(1)
    other = build_model(name, SMALL.get(name, {}), CONTEXT)
    x = torch.randn(1, 3, 16, 16)
    assert not torch.allclose(model(x), other(x))
    other.load_state_dict(load_checkpoint(path)["model"])
    torch.testing.assert_close(model(x), other(x), rtol=0, atol=0)


def test_unknown_family_and_argument_name_the_nearest():
    with pytest.raises(ConfigError, match="did you mean 'fno'"):
        build_model("fnoo", {}, CONTEXT)
    with pytest.raises(ConfigError, match="did you mean 'modes'"):
        build_model("fno", {"mode": 4}, CONTEXT)


def test_fno_skip_options_reach_neuraloperator():
    import neuralop.layers.skip_connections as skips

    context = ModelContext(in_channels=1, out_channels=1, grid_shape=(16, 16))
    default = build_model("fno", {"modes": 4, "width": 8}, context)
    gated = build_model(
        "fno", {"modes": 4, "width": 8, "fno_skip": "soft-gating", "use_channel_mlp": False}, context
    )
    assert not any(isinstance(s, skips.SoftGating) for s in default.fno_blocks.fno_skips)
    assert all(isinstance(s, skips.SoftGating) for s in gated.fno_blocks.fno_skips)
    assert not gated.fno_blocks.use_channel_mlp and default.fno_blocks.use_channel_mlp
    # soft gating is one weight per channel instead of a width x width map, and no channel MLP
    assert sum(p.numel() for p in gated.parameters()) < sum(p.numel() for p in default.parameters())
    with pytest.raises(ConfigError, match="fno_skip 'gated' is not one of linear, identity, soft-gating"):
        build_model("tfno", {"modes": 4, "width": 8, "fno_skip": "gated"}, context)
