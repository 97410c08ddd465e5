"""Transform Once (sciml.models.t1): the orthonormal DCT, the spectral loss, the vp init, training, errors."""

import numpy as np
import pytest
import scipy.fft
import torch

from sciml.errors import ConfigError
from sciml.metrics import relative_l2
from sciml.models.registry import ModelContext, SpectralLossModel, build_model
from sciml.models.t1 import T1Layer2d, build_t1, dct, dct2, dct_matrix, idct, idct2
from sciml.models.wrappers import Normalized, SpectralNormalized

CONTEXT = ModelContext(in_channels=3, out_channels=2, grid_shape=(16, 16))
SMALL = {"modes": 4, "width": 8, "n_layers": 2, "head_init_std": 0.1}


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-6), (torch.float64, 1e-12)])
@pytest.mark.parametrize("n", [7, 16, 33])
def test_dct_matches_scipy_is_orthonormal_and_inverts(dtype, tol, n):
    x = torch.randn(3, n, n, dtype=torch.float64).to(dtype)
    ref = scipy.fft.dct(x.double().numpy(), type=2, norm="ortho", axis=-1)
    assert np.abs(dct(x).double().numpy() - ref).max() < tol * 10
    ref2 = scipy.fft.dctn(x.double().numpy(), type=2, norm="ortho", axes=(-2, -1))
    assert np.abs(dct2(x).double().numpy() - ref2).max() < tol * 10
    torch.testing.assert_close(idct(dct(x)), x, rtol=0, atol=tol)
    torch.testing.assert_close(idct2(dct2(x)), x, rtol=0, atol=tol)
    # orthonormal: the norm is kept and the matrix is unitary
    torch.testing.assert_close(dct2(x).norm(), x.norm(), rtol=tol, atol=0)
    d = dct_matrix(n, dtype=dtype)
    torch.testing.assert_close(d @ d.T, torch.eye(n, dtype=dtype), rtol=0, atol=tol)


@pytest.mark.parametrize("transform", ["dct", "rfft"])
@pytest.mark.parametrize("resolution", [16, 32, 15])
def test_spectral_loss_equals_physical_relative_l2(transform, resolution):
    torch.manual_seed(0)
    model = build_t1(CONTEXT, transform=transform, **SMALL).double()
    x = torch.randn(2, 3, resolution, resolution, dtype=torch.float64)
    y = torch.randn(2, 2, resolution, resolution, dtype=torch.float64)
    physical = relative_l2(model(x), y).mean()
    spectral = model.spectral_loss(x, model.transform_target(y))
    torch.testing.assert_close(spectral, physical, rtol=1e-12, atol=0)


@pytest.mark.parametrize("transform", ["dct", "rfft"])
def test_normalized_spectral_output_is_the_spectrum_of_the_physical_output(transform):
    # T[std * out + mean] = std * T[out] + mean * T[1]: the wrapper's spectral path, exactly
    torch.manual_seed(0)
    model = build_t1(CONTEXT, transform=transform, **SMALL).double()
    wrapped = Normalized(
        model,
        torch.tensor([0.5, -1.0, 2.0]),
        torch.tensor([2.0, 0.5, 3.0]),
        torch.tensor([1.5, -0.3]),
        torch.tensor([4.0, 0.2]),
    ).double()
    assert isinstance(wrapped, SpectralLossModel)
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    spectrum = wrapped(x, spectral=True)
    torch.testing.assert_close(spectrum, wrapped.transform_target(wrapped(x)), rtol=1e-12, atol=1e-12)
    y = torch.randn(2, 2, 16, 16, dtype=torch.float64)
    loss = wrapped.transformed_loss(spectrum, wrapped.transform_target(y), 16)
    torch.testing.assert_close(loss, relative_l2(wrapped(x), y).mean(), rtol=1e-12, atol=0)


def test_normalized_spectral_output_needs_a_transformed_domain():
    fno_like = Normalized(torch.nn.Conv2d(1, 1, 1), *torch.ones(4, 1))
    assert not isinstance(fno_like, SpectralLossModel)
    assert not hasattr(fno_like, "transform_target")
    with pytest.raises(ConfigError, match="Conv2d has no transformed-domain output"):
        fno_like(torch.randn(1, 1, 8, 8), spectral=True)


@pytest.mark.parametrize("transform", ["dct", "rfft"])
def test_a_wrapper_around_a_spectral_loss_model_is_one_with_the_same_loss(transform):
    # the contract is an explicit Protocol: T1 declares it, and Normalized forwards it exactly when the
    # model it wraps has it, with the inner model's spectral loss (identity statistics: the same numbers)
    torch.manual_seed(0)
    model = build_t1(CONTEXT, transform=transform, **SMALL).double()
    assert isinstance(model, SpectralLossModel)
    wrapped = Normalized(model, torch.zeros(3), torch.ones(3), torch.zeros(2), torch.ones(2)).double()
    assert isinstance(wrapped, SpectralLossModel) and isinstance(wrapped, SpectralNormalized)
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    y = torch.randn(2, 2, 16, 16, dtype=torch.float64)
    inner = model.transformed_loss(model(x, spectral=True), model.transform_target(y), 16)
    outer = wrapped.transformed_loss(wrapped(x, spectral=True), wrapped.transform_target(y), 16)
    torch.testing.assert_close(outer, inner, rtol=1e-12, atol=0)
    torch.testing.assert_close(wrapped(x), model(x), rtol=0, atol=0)


def test_vp_stack_init_keeps_the_block_variance_after_the_first_layer():
    # after the first layer the field is band-limited to the block: "vp" still multiplies the variance by
    # about N / (2 m^2) per layer, "vp-stack" by about 1 / 2 (GELU's half) in every later layer
    n, m, d = 64, 8, 16
    torch.manual_seed(0)
    block = torch.randn(16, d, m, m)  # a band-limited field's block, unit variance

    def branch_gain(init: str) -> float:
        model = build_t1(ModelContext(1, 1, (n, n)), modes=m, width=d, n_layers=2, init=init)
        second = model.layers[1]
        return ((second(block) - block).var() / block.var()).item()

    assert 0.2 < branch_gain("vp-stack") < 1.0
    assert branch_gain("vp") > 0.2 * n * n / (m * m)
    first = build_t1(ModelContext(1, 1, (n, n)), modes=m, width=d, n_layers=2, init="vp-stack").layers[0]
    torch.manual_seed(0)
    same_first = build_t1(ModelContext(1, 1, (n, n)), modes=m, width=d, n_layers=2, init="vp").layers[0]
    assert first.wc.std().item() == pytest.approx(same_first.wc.std().item(), rel=0.05)


@pytest.mark.parametrize("transform", ["dct", "rfft"])
def test_vp_init_keeps_layer_output_variance_order_one(transform):
    torch.manual_seed(0)
    n, m, d = 32, 8, 16
    model = build_t1(ModelContext(1, 1, (n, n)), modes=m, width=d, n_layers=1, transform=transform)
    x = torch.randn(16, d, n, n)  # white, unit variance in the physical domain
    block = model.transform(x)

    def out_variance(layer: T1Layer2d) -> float:
        return model.transform(layer(block) - block, inverse=True, shape=(n, n)).var().item()

    vp = out_variance(model.layers[0])
    naive_layer = T1Layer2d(d, m, transform == "rfft", init="naive", n_points=n * n)
    naive = out_variance(naive_layer)
    assert 0.05 < vp < 5.0  # DCT ~0.5, rfft ~0.11 (see BENCHMARKS.md, T1)
    assert naive < 1e-3
    # "naive" is the reference's (DiffEqML kairos): channel mixing std 1/d^2, mode mixing std sqrt(1/m)
    for weight, std in ((naive_layer.wc, 1 / d**2), (naive_layer.s1, (1 / m) ** 0.5)):
        assert weight.std().item() == pytest.approx(std, rel=0.1)


@pytest.mark.parametrize("transform", ["dct", "rfft"])
def test_a_few_training_steps_reduce_the_loss(transform):
    torch.manual_seed(0)
    context = ModelContext(1, 1, (16, 16))
    model = build_model("t1", {"modes": 6, "width": 8, "n_layers": 2, "transform": transform}, context)
    g = torch.linspace(0, 2 * torch.pi, 17)[:-1]
    phase = torch.rand(8, 1, 1, 1) * 2 * torch.pi
    x = torch.sin(g[None, None, :, None] + phase) * torch.cos(g[None, None, None, :])
    y = 2 * x
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = relative_l2(model(x), y).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_bad_arguments_raise_config_error():
    with pytest.raises(ConfigError, match="modes=20 do not fit"):
        build_t1(CONTEXT, modes=20)
    with pytest.raises(ConfigError, match="modes=10 do not fit"):
        build_t1(CONTEXT, modes=10, transform="rfft")  # rfft keeps at most 16 // 2 + 1 = 9 columns
    with pytest.raises(ConfigError, match="transform 'dft'"):
        build_t1(CONTEXT, transform="dft", **{k: v for k, v in SMALL.items()})
    with pytest.raises(ConfigError, match="init"):
        build_t1(CONTEXT, init="xavier", modes=4)
    with pytest.raises(ConfigError, match="positive integer"):
        build_t1(CONTEXT, modes=0)
    model = build_t1(CONTEXT, **SMALL)
    with pytest.raises(ConfigError, match="do not fit the 3x3 grid"):
        model(torch.randn(1, 3, 3, 3))


def test_registry_contract_two_resolutions_and_checkpoint():
    torch.manual_seed(0)
    model = build_model("t1", SMALL, CONTEXT)
    for resolution in (16, 32):
        x = torch.randn(2, 3, resolution, resolution, requires_grad=True)
        y = model(x)
        assert y.shape == (2, 2, resolution, resolution)
        y.square().mean().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
        assert all(p.grad is not None for p in model.parameters())
    other = build_model("t1", SMALL, CONTEXT)
    x = torch.randn(1, 3, 16, 16)
    assert not torch.allclose(model(x), other(x))
    other.load_state_dict(model.state_dict())
    torch.testing.assert_close(model(x), other(x), rtol=0, atol=0)
