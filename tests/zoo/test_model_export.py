"""Exporting models: torch.export programs and ONNX (run by onnxruntime) reproduce the eager model.

Small models of every registry family (tiny widths and modes on a 16^2 grid) are exported through
:func:`sciml.zoo.onnx_export.export_model`; each written file is reloaded here, independently of the check
the exporter runs, and compared with the eager model on a fresh batch of another size. One real zoo entry
goes through the ``sciml zoo export NAME --format ...`` command.
"""

import math
from pathlib import Path

import pytest
import torch

import sciml.zoo
from sciml.errors import ExportError, SciMLError
from sciml.models import ModelContext, build_model
from sciml.zoo.__main__ import main as zoo_main
from sciml.zoo.onnx_export import TOLERANCE, example_input, export_model
from sciml.zoo.pretrained import PretrainedOperator

GRID = 16
SMALL_FAMILIES = {
    "fno": (1, 1, {"modes": 4, "width": 8, "n_layers": 2}),
    "tfno": (1, 1, {"modes": 4, "width": 8, "n_layers": 2, "factorization": "tucker", "rank": 0.5}),
    "mg_tfno": (
        1,
        1,
        {"levels": 1, "model": "tfno", "model_kwargs": {"modes": 4, "width": 8, "n_layers": 1, "rank": 0.5}},
    ),
    "st_fno": (
        4,
        4,
        {"architecture": "fno3d", "fields": 1, "modes": 4, "modes_t": 2, "width": 6, "n_layers": 1},
    ),
    "t1": (1, 1, {"modes": 6, "width": 8, "n_layers": 2, "transform": "dct", "head_width": 16}),
    "lsm": (2, 1, {"width": 8, "levels": 1, "num_token": 2, "num_basis": 4, "heads": 1, "head_width": 8}),
    "deeponet": (1, 1, {"sensors": 4, "basis": 8, "branch_widths": [16], "trunk_widths": [16]}),
}
"""Every registry family at a tiny size: (input channels, output channels, arguments)."""

ONNX_FAMILIES = ["t1", "lsm", "deeponet"]
"""The families with real-valued weights only; the others hold complex spectral weights."""


def small_model(family: str) -> PretrainedOperator:
    """A randomly initialized tiny ``family`` model with a non-trivial normalization, in eval mode."""
    torch.manual_seed(0)
    c_in, c_out, kwargs = SMALL_FAMILIES[family]
    context = ModelContext(c_in, c_out, (GRID, GRID), (1.0, 1.0), (True, True))
    config = {
        "name": f"small_{family}",
        "model": {"name": family, "kwargs": kwargs},
        "context": {"in_channels": c_in, "out_channels": c_out, "grid_shape": [GRID, GRID]},
        "normalization": {"x_mean": [0.1] * c_in, "x_std": [2.0] * c_in, "y_mean": [-0.2], "y_std": [3.0]},
    }
    return PretrainedOperator(build_model(family, kwargs, context), config).eval()


def assert_reproduces(model: torch.nn.Module, run_file, shape: tuple[int, ...]) -> None:
    """The exported file, run on a fresh input of ``shape`` (another batch size), equals the eager model."""
    x = torch.randn(shape)
    with torch.no_grad():
        expected = model(x)
    got = run_file(x)
    assert got.shape == expected.shape
    scale = float(expected.abs().max())
    assert scale > 0
    assert float((got - expected).abs().max()) <= TOLERANCE * scale


def run_exported_program(path: Path):
    module = torch.export.load(str(path)).module()
    return lambda x: module(x)


def run_onnx(path: Path):
    onnxruntime = pytest.importorskip("onnxruntime")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"x": x.numpy()})[0])


# one family of each kind (neuraloperator's complex spectral weights, multi-grid patching, DCT, branch-trunk):
# 5-15 s each on a shared CPU; the others (tfno, st_fno, lsm) export the same way (docs/zoo.md's table)
EXPORT_TESTED = ["deeponet", "fno", "mg_tfno", "t1"]


@pytest.mark.parametrize("family", EXPORT_TESTED)
def test_exported_program_round_trip_equals_eager(family, tmp_path):
    model = small_model(family)
    path = tmp_path / f"{family}.pt2"
    result = export_model(model, path, "exported-program", example_input(model, model.config), name=family)
    assert result.path == path and result.relative_error <= TOLERANCE
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left
    assert_reproduces(model, run_exported_program(path), (5, *SMALL_FAMILIES[family][:1], GRID, GRID))


@pytest.mark.parametrize("family", ONNX_FAMILIES)
def test_onnx_runs_in_onnxruntime_like_eager(family, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model = small_model(family)
    path = tmp_path / f"{family}.onnx"
    result = export_model(model, path, "onnx", example_input(model, model.config), name=family)
    assert math.isfinite(result.relative_error) and result.relative_error <= TOLERANCE
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # one file, no external data
    assert_reproduces(model, run_onnx(path), (1, *SMALL_FAMILIES[family][:1], GRID, GRID))


@pytest.mark.parametrize("family", sorted(set(SMALL_FAMILIES) - set(ONNX_FAMILIES)))
def test_complex_spectral_families_refuse_onnx_with_one_clear_error(family, tmp_path):
    model = small_model(family)
    with pytest.raises(
        ExportError, match=rf"^{family}: cannot export to onnx: complex-valued spectral"
    ) as err:
        export_model(model, tmp_path / "m.onnx", "onnx", example_input(model, model.config), name=family)
    assert "--format exported-program" in str(err.value)
    assert list(tmp_path.iterdir()) == []


class DataDependent(torch.nn.Module):
    """Branches on the values of its input: torch.export cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.config = {"context": {"in_channels": 1, "grid_shape": [4, 4]}}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if float(x.sum()) > 0 else -x


def test_failed_export_is_one_error_and_leaves_nothing(tmp_path):
    model = DataDependent()
    path = tmp_path / "m.pt2"
    with pytest.raises(ExportError, match=r"^branchy: export to exported-program failed: "):
        export_model(model, path, "exported-program", example_input(model, model.config), name="branchy")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ExportError, match="unknown export format 'tflite'"):
        export_model(model, path, "tflite", torch.zeros(2, 1, 4, 4), name="branchy")


def test_cli_exports_a_zoo_entry_to_the_current_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert zoo_main(["export", "deeponet_ns64", "--format", "exported-program", "--resolution", "32"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deeponet_ns64.pt2"]
    assert "deeponet_ns64.pt2 (exported-program; max |error| vs PyTorch" in capsys.readouterr().out
    model = sciml.zoo.load("deeponet_ns64")
    assert_reproduces(model, run_exported_program(tmp_path / "deeponet_ns64.pt2"), (3, 1, 32, 32))


def test_cli_refuses_onnx_of_a_complex_family_and_writes_nothing(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "sub" / "fno.onnx"
    assert zoo_main(["export", "fno_ns64", "--format", "onnx", "--out", str(out)]) == 2
    assert "fno_ns64 (fno): cannot export to onnx: complex-valued spectral weights" in caplog.text
    assert not out.exists() and list(tmp_path.rglob("*.onnx")) == []
    assert issubclass(ExportError, SciMLError)
