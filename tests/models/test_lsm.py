"""Latent Spectral Models: shapes at any grid, the attention and spectral pieces against direct evaluation,
a few training steps, config errors, and the registry contract (forward/backward at two resolutions and a
checkpoint round trip)."""

import math

import pytest
import torch

import sciml.models.lsm  # noqa: F401  (registers "lsm" until the registry imports it)
from sciml.errors import ConfigError
from sciml.models import ModelContext, build_model
from sciml.models.lsm import LSM2d, NeuralSpectralBlock, spectral_basis
from sciml.training.checkpoint import load_checkpoint, save_checkpoint, tensor_state_dict

SMALL = {"width": 8, "levels": 2, "heads": 4, "patch_size": 2, "num_basis": 4, "head_width": 16}
CONTEXT = ModelContext(in_channels=3, out_channels=2, grid_shape=(16, 16), domain_lengths=(1.0, 1.0))


@pytest.mark.parametrize("shape", [(16, 16), (32, 32), (17, 23), (5, 9), (30, 12)])
@pytest.mark.parametrize("levels,patch", [(2, 2), (3, [2, 4])])
def test_output_shape_at_odd_and_non_square_grids(shape, levels, patch):
    torch.manual_seed(0)
    model = build_model("lsm", {**SMALL, "levels": levels, "patch_size": patch}, CONTEXT)
    x = torch.randn(2, 3, *shape)
    y = model(x)
    assert y.shape == (2, 2, *shape)
    assert torch.isfinite(y).all()


def test_padding_is_per_axis_in_h_w_order():
    model = LSM2d(1, 1, width=8, patch_size=(2, 4), heads=4, levels=3)
    # multiples of 2*4=8 rows and 4*4=16 columns
    assert model.padded_shape(17, 23) == (24, 32)
    assert model.padded_shape(16, 32) == (16, 32)


def test_registry_contract_two_resolutions_and_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = build_model("lsm", SMALL, CONTEXT)
    for resolution in (16, 32):
        x = torch.randn(2, 3, resolution, resolution, requires_grad=True)
        y = model(x)
        assert y.shape == (2, 2, resolution, resolution)
        y.square().mean().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    path = save_checkpoint(tmp_path / "m.pt", {"model": tensor_state_dict(model)})
    torch.manual_seed(1)
    other = build_model("lsm", SMALL, CONTEXT)
    x = torch.randn(1, 3, 16, 16)
    assert not torch.allclose(model(x), other(x))
    other.load_state_dict(load_checkpoint(path)["model"])
    torch.testing.assert_close(model(x), other(x), rtol=0, atol=0)


def test_every_tensor_is_a_parameter_or_buffer():
    """Device-agnostic: moving the model moves everything (the public code's modes_list was not)."""
    model = build_model("lsm", SMALL, CONTEXT).double()
    y = model(torch.randn(1, 3, 12, 12, dtype=torch.float64))
    assert y.dtype == torch.float64


def test_attention_weights_normalize():
    torch.manual_seed(0)
    block = NeuralSpectralBlock(width=8, num_basis=4, patch_size=(2, 2), num_token=3, heads=2)
    patches = torch.randn(5, 8, 2, 2)
    tokens, enc = block.encode(patches)
    assert tokens.shape == (5, 2, 3, 4) and enc.shape == (5, 2, 3, 4)  # [N, h, M, L]
    torch.testing.assert_close(enc.sum(-1), torch.ones(5, 2, 3))
    out, dec = block.decode(patches, tokens)
    assert out.shape == patches.shape and dec.shape == (5, 2, 4, 3)  # [N, h, L, M]
    torch.testing.assert_close(dec.sum(-1), torch.ones(5, 2, 4))


def test_encoder_matches_direct_evaluation():
    """T = softmax(T0 K^T) V + T0 per head, with K, V the 1x1 convolution of the patch."""
    torch.manual_seed(0)
    block = NeuralSpectralBlock(width=4, num_basis=3, patch_size=(2, 2), num_token=2, heads=2)
    patch = torch.randn(1, 4, 2, 2)
    tokens, _ = block.encode(patch)
    kv = block.encoder_kv(patch)[0].flatten(1)  # [2d, L]
    key, value = kv[:4], kv[4:]
    for h in range(2):
        k_h, v_h = key[2 * h : 2 * h + 2].T, value[2 * h : 2 * h + 2].T  # [L, d/h]
        t0 = block.latent[h]
        expected = torch.softmax(t0 @ k_h.T, dim=-1) @ v_h + t0
        torch.testing.assert_close(tokens[0, h], expected)


def test_spectral_operator_matches_direct_evaluation():
    torch.manual_seed(0)
    width, n_basis = 4, 5
    block = NeuralSpectralBlock(width=width, num_basis=n_basis, patch_size=(1, 1), num_token=3, heads=2)
    tokens = torch.randn(2, 2, 3, 2)  # [N, h, M, d/h]
    out = block.transition(tokens)
    a, b = block.weights[:, :n_basis], block.weights[:, n_basis:]
    for n in range(2):
        for h in range(2):
            for m in range(3):
                for j in range(2):
                    c = h * 2 + j
                    t = tokens[n, h, m, j].item()
                    expected = t + sum(
                        a[c, k].item() * math.sin(k * math.pi * t / n_basis)
                        + b[c, k].item() * math.cos(k * math.pi * t / n_basis)
                        for k in range(n_basis)
                    )
                    assert out[n, h, m, j].item() == pytest.approx(expected, rel=1e-5, abs=1e-6)
    basis = spectral_basis(torch.tensor([0.5]), 2)
    torch.testing.assert_close(
        basis, torch.tensor([[0.0, math.sin(math.pi / 4), 1.0, math.cos(math.pi / 4)]])
    )


def test_spectral_weights_initialized_as_in_the_paper():
    block = NeuralSpectralBlock(width=16, num_basis=12, patch_size=(2, 2), num_token=4, heads=8)
    assert block.weights.shape == (16, 24) and block.latent.shape == (8, 4, 2)
    for p in (block.weights, block.latent):
        assert p.min() >= 0 and p.max() <= 1 / 16


def test_training_a_few_steps_reduces_the_loss():
    """Learn u -> -u on shifted sine waves (8^2); one thread, so a loaded machine does not stall it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        context = ModelContext(in_channels=1, out_channels=1, grid_shape=(8, 8))
        model = build_model("lsm", SMALL, context)
        grid = torch.linspace(0, 2 * math.pi, 8)
        phase = torch.rand(4, 1, 1, 1) * 2 * math.pi
        x = torch.sin(grid[None, None, :, None] + phase).expand(-1, -1, 8, 8).contiguous()
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        losses = []
        for _ in range(20):
            opt.zero_grad()
            loss = (model(x) + x).square().mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    finally:
        torch.set_num_threads(threads)
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"width": 12, "heads": 8}, "heads=8 must divide width=12"),
        ({"patch_size": [2, 2, 2]}, "patch_size"),
        ({"levels": 0}, "levels"),
        ({"num_basis": -1}, "num_basis"),
        ({"heads_": 2}, "did you mean 'heads'"),
        ({"norm": "layer"}, "norm 'layer' is not one of batch, instance"),
    ],
)
def test_bad_kwargs_raise_config_error(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        build_model("lsm", kwargs, CONTEXT)


def test_only_two_dimensional_grids():
    with pytest.raises(ConfigError, match="2-D"):
        build_model("lsm", SMALL, ModelContext(in_channels=1, out_channels=1, grid_shape=(16,)))


def test_instance_norm_uses_each_sample_alone_in_train_and_eval():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 16, 16)
    instance = build_model("lsm", {**SMALL, "norm": "instance"}, CONTEXT)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in instance.modules())
    together = instance.train()(x)
    alone = torch.cat([instance(x[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(instance.eval()(x), together, rtol=1e-5, atol=1e-6)
    # the paper's BatchNorm (the default) mixes the batch in train mode
    batch = build_model("lsm", SMALL, CONTEXT).train()
    assert not torch.allclose(batch(x)[:1], batch(x[:1]), atol=1e-4)
