"""Weights files in half precision: complex tensors stored as their real view, restored exactly on load."""

import json
import os
import stat

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from sciml.errors import DataFormatError
from sciml.models import ModelContext, build_model
from sciml.zoo.files import sha256_file
from sciml.zoo.pretrained import PretrainedOperator
from sciml.zoo.weights import COMPLEX_KEY, read_weights, round_weights, write_weights


class Spectral(nn.Module):
    """A real and a complex parameter plus an integer buffer, as in the FNO-type families."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.lift = nn.Parameter(torch.randn(3, 5, generator=g))
        self.modes = nn.Parameter(torch.randn(4, 4, 3, dtype=torch.complex64, generator=g) / 3)
        self.register_buffer("index", torch.arange(6))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_file_holds_no_complex_and_loads_as_the_rounded_model(tmp_path, dtype):
    model = Spectral()
    path = tmp_path / "model.safetensors"
    write_weights(model, path, dtype, {"format": "pt"})
    raw = load_file(path)
    storage = getattr(torch, dtype)
    assert raw["modes"].dtype == storage and list(raw["modes"].shape) == [4, 4, 3, 2]
    assert raw["lift"].dtype == storage and raw["index"].dtype == torch.int64
    with safe_open(str(path), "pt") as handle:
        assert json.loads(handle.metadata()[COMPLEX_KEY]) == ["modes"]

    restored = read_weights(path)
    round_weights(model, dtype)  # the model in memory as it will be after loading
    assert restored["modes"].dtype == torch.complex64
    for key, value in model.state_dict().items():
        assert torch.equal(restored[key], value), key
    # rounding moved the complex weights by the storage precision, no more
    original = Spectral().modes.detach()
    error = (restored["modes"] - original).abs().max() / original.abs().max()
    assert 0 < error < {"float16": 1e-3, "bfloat16": 8e-3}[dtype]


def test_float32_file_keeps_complex64_and_names_nothing(tmp_path):
    model = Spectral()
    path = tmp_path / "model.safetensors"
    write_weights(model, path, "float32", {})
    assert load_file(path)["modes"].dtype == torch.complex64
    with safe_open(str(path), "pt") as handle:
        assert COMPLEX_KEY not in (handle.metadata() or {})
    assert all(torch.equal(read_weights(path)[k], v) for k, v in model.state_dict().items())


def test_a_half_file_written_before_complex_rounding_loads_unchanged(tmp_path):
    """Entries converted earlier: real tensors float16, complex ones complex64, no marker."""
    model = Spectral()
    path = tmp_path / "old.safetensors"
    state = {"lift": model.lift.detach().half(), "modes": model.modes.detach().clone(), "index": model.index}
    save_file(state, str(path), metadata={"format": "pt", "sciml_format": "1"})
    restored = read_weights(path)
    assert torch.equal(restored["modes"], model.modes.detach())
    assert restored["lift"].dtype == torch.float16


@pytest.mark.parametrize(
    ("marker", "found"),
    [
        ("modes", "modes"),  # not JSON
        (json.dumps({"modes": 1}), '{"modes": 1}'),  # not a list
        (json.dumps(["absent"]), "absent"),  # no such tensor
        (json.dumps(["index"]), "torch.int64"),  # not floating point
        (json.dumps(["lift"]), "[3, 5]"),  # last dimension not 2
    ],
)
def test_a_corrupted_marker_is_one_clear_error(tmp_path, marker, found):
    model = Spectral()
    state = {
        "lift": model.lift.detach().half(),
        "modes": torch.view_as_real(model.modes.detach()).half(),
        "index": model.index,
    }
    path = tmp_path / "bad.safetensors"
    save_file(state, str(path), metadata={COMPLEX_KEY: marker})
    with pytest.raises(DataFormatError) as caught:
        read_weights(path)
    message = str(caught.value)
    assert str(path) in message and COMPLEX_KEY in message and found in message


def _tiny_fno() -> tuple[nn.Module, dict]:
    """A 1-layer FNO on 8^2 and the config.json fields a pretrained folder needs."""
    config = {
        "model": {"name": "fno", "kwargs": {"modes": 2, "width": 4, "n_layers": 1}},
        "context": {
            "in_channels": 1,
            "out_channels": 1,
            "grid_shape": [8, 8],
            "domain_lengths": [1.0, 1.0],
        },
        "normalization": {"x_mean": [0.0], "x_std": [1.0], "y_mean": [0.0], "y_std": [1.0]},
        "task": {"mode": "window", "t_in": 1, "t_out": 1, "fields": ["vorticity"]},
        "dataset": {"path": "flows.h5"},
    }
    context = ModelContext(1, 1, (8, 8), (1.0, 1.0))
    return build_model("fno", config["model"]["kwargs"], context), config


def test_from_pretrained_round_trips_a_half_fno_and_refuses_a_corrupted_marker(tmp_path):
    """The zoo loader goes through read_weights: one DataFormatError naming the file and the key."""
    fno, config = _tiny_fno()
    folder = PretrainedOperator(fno, config).save_pretrained(tmp_path / "tiny", weights_dtype="float16")
    weights = folder / "model.safetensors"
    state = load_file(weights)
    names = [k for k, v in fno.state_dict().items() if torch.is_tensor(v) and v.is_complex()]
    assert names and all(state[k].shape[-1] == 2 for k in names)
    loaded = PretrainedOperator.from_pretrained(path=folder)  # the round trip through the real loader
    round_weights(fno, "float16")
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(loaded.operator.model(x), fno(x))

    save_file(state, str(weights), metadata={COMPLEX_KEY: json.dumps(["nowhere"])})
    saved = json.loads((folder / "config.json").read_text())
    saved["weights"]["sha256"] = sha256_file(weights)
    (folder / "config.json").write_text(json.dumps(saved))
    with pytest.raises(DataFormatError, match=COMPLEX_KEY):
        PretrainedOperator.from_pretrained(path=folder)


def test_a_saved_folder_has_the_umask_permissions_not_the_private_staging_ones(tmp_path):
    fno, config = _tiny_fno()
    previous = os.umask(0o022)
    try:
        folder = PretrainedOperator(fno, config).save_pretrained(tmp_path / "shared", weights_dtype="float16")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {0o644}
