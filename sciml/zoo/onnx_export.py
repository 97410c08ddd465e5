"""Export a pretrained model to ONNX or to a ``torch.export`` program, checked against the eager model.

``sciml zoo export NAME --format onnx | exported-program`` (or :func:`export_zoo_model`) writes ``NAME.onnx``
or ``NAME.pt2``: the whole :class:`~sciml.zoo.pretrained.PretrainedOperator`, normalization included, so the
file maps a physical input ``[B, C_in, *grid]`` to the physical output, with a dynamic batch dimension and the
grid fixed at export time (the model's training grid, or ``resolution``). The file is written under a
temporary name, reloaded and run on a fresh random input (batch size other than the example's) by
onnxruntime or ``torch.export.load``, compared with the eager model, and renamed only when the largest
absolute difference is at most :data:`TOLERANCE` times the largest absolute output.

ONNX has no complex tensors: a model holding complex parameters or buffers (neuraloperator's spectral
convolutions in ``fno``, ``tfno``, ``mg_tfno``, ``st_fno``; ``t1`` with ``transform: rfft``) is refused
with one :class:`~sciml.errors.ExportError` pointing to ``--format exported-program``, which supports every
family. ONNX export needs ``pip install 'sciml[export]'`` (onnx, onnxscript, onnxruntime).
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from sciml.errors import ExportError

logger = logging.getLogger(__name__)

FORMATS = {"onnx": ".onnx", "exported-program": ".pt2"}
"""The export formats and the suffix of their files."""

TOLERANCE = 1e-4
"""Largest accepted ``max |exported - eager| / max |eager|`` on the check input (float32)."""

EXAMPLE_BATCH = 2
"""Batch size of the tracing input (not 0 or 1, which torch.export would specialize)."""

CHECK_BATCH = 3
"""Batch size of the fresh check input: differs from the example's, so the dynamic batch is exercised."""


@dataclass(frozen=True)
class ExportResult:
    """A written export and how closely it reproduces the eager model on a fresh input."""

    path: Path
    format: str
    max_abs_error: float
    output_scale: float

    @property
    def relative_error(self) -> float:
        """``max |exported - eager| / max |eager|`` on the check input."""
        return self.max_abs_error / max(self.output_scale, 1e-30)


def _check_format(name: str, fmt: str) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"{name}: unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")


def complex_tensors(model: nn.Module) -> list[str]:
    """Names of the model's complex parameters and buffers (what ONNX cannot hold)."""
    tensors = [*model.named_parameters(), *model.named_buffers()]
    return [name for name, tensor in tensors if tensor.is_complex()]


def onnx_unsupported_reason(model: nn.Module) -> str | None:
    """Why ``model`` cannot be exported to ONNX (complex weights), or None when nothing known prevents it."""
    names = complex_tensors(model)
    if not names:
        return None
    return (
        f"complex-valued spectral weights ({len(names)} complex tensors, e.g. {names[0]!r}): ONNX has no "
        "complex tensors; use --format exported-program"
    )


def onnx_supported_by_config(config: dict) -> bool:
    """Whether the model a zoo ``config.json`` describes can go to ONNX (no complex weights), without weights.

    The model is built on PyTorch's ``meta`` device (shapes and dtypes only, no memory, milliseconds), so a
    model card can say it from the config alone.
    """
    from sciml.zoo.pretrained import build_described_model

    with torch.device("meta"):
        model = build_described_model(config, Path("config.json"))
    return onnx_unsupported_reason(model) is None


@contextlib.contextmanager
def _plain_einsum() -> Iterator[None]:
    """Trace einsum as one plain ``torch.einsum`` with a batch-independent contraction order.

    neuraloperator routes its spectral contractions through tensorly's opt_einsum plugin, and torch's own
    einsum plans with opt_einsum; both pick a path from the concrete shapes, which fixes the batch size
    in the traced graph. Both are restored on exit.
    """
    import tensorly
    from tensorly import plugins

    backend = tensorly.backend.BackendManager
    active = backend.current_backend().einsum
    default = plugins.PREVIOUS_EINSUM or active
    backend.register_backend_method("einsum", default)
    try:
        with torch.backends.opt_einsum.flags(enabled=False):
            yield
    finally:
        backend.register_backend_method("einsum", active)


def _first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's message (exporters write pages)."""
    cause = err.__cause__ or err
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return f"{type(cause).__name__}: {lines[0] if lines else ''}"[:300]


def _export_program(model: nn.Module, example: torch.Tensor) -> torch.export.ExportedProgram:
    batch = torch.export.Dim("batch")
    with _plain_einsum():
        return torch.export.export(model, (example,), dynamic_shapes=({0: batch},))


def _write_exported_program(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    torch.export.save(_export_program(model, example), str(path))


def _run_exported_program(path: Path, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.export.load(str(path)).module()(x)


def _write_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    try:
        import onnxscript  # noqa: F401  (torch.onnx's dynamo exporter needs it)
    except ImportError:
        raise ExportError(
            "ONNX export needs onnxscript, onnx and onnxruntime: pip install 'sciml[export]'"
        ) from None
    with _plain_einsum():
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=True,
            external_data=False,
            input_names=["x"],
            output_names=["y"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            optimize=False,  # onnxruntime optimizes the graph when it loads it; this pass only costs time
            verbose=False,
        )


def _run_onnx(path: Path, x: torch.Tensor) -> torch.Tensor:
    try:
        import onnxruntime
    except ImportError:
        raise ExportError(
            f"{path}: checking an ONNX export needs onnxruntime: pip install 'sciml[export]'"
        ) from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": x.detach().cpu().numpy()})
    return torch.from_numpy(y)


def export_model(
    model: nn.Module,
    path: str | os.PathLike[str],
    fmt: str,
    example: torch.Tensor,
    *,
    name: str = "model",
    seed: int = 0,
) -> ExportResult:
    """Export ``model`` (traced on ``example [B, C, *grid]``) to ``path`` in format ``fmt`` and check it.

    The file is written under a temporary name beside ``path``, reloaded and run on a fresh random input
    of the example's shape with batch :data:`CHECK_BATCH` (drawn with ``seed``), and renamed to ``path``
    only when ``max |exported - eager| <= TOLERANCE * max |eager|``; otherwise, and on any failure of the
    exporter, nothing is left and one :class:`ExportError` names ``name``, the format and the reason.
    """
    _check_format(name, fmt)
    if fmt == "onnx":
        reason = onnx_unsupported_reason(model)
        if reason is not None:
            raise ExportError(f"{name}: cannot export to onnx: {reason}")
    write, run = (
        (_write_onnx, _run_onnx) if fmt == "onnx" else (_write_exported_program, _run_exported_program)
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    generator = torch.Generator().manual_seed(seed)
    check = torch.randn((CHECK_BATCH, *example.shape[1:]), generator=generator, dtype=example.dtype)
    staged = path.with_name(f".{path.name}.{uuid.uuid4().hex}{FORMATS[fmt]}")  # the exporter creates it
    try:
        try:
            write(model, example, staged)
            exported = run(staged, check)
        except ExportError:
            raise
        except Exception as err:  # the exporters raise many types; report the reason, leave no file
            raise ExportError(f"{name}: export to {fmt} failed: {_first_line(err)}") from err
        with torch.no_grad():
            eager = model(check)
        if exported.shape != eager.shape:
            raise ExportError(
                f"{name}: the {fmt} export gives shape {list(exported.shape)}, the model {list(eager.shape)}"
            )
        result = ExportResult(
            path=path,
            format=fmt,
            max_abs_error=float((exported - eager).abs().max()),
            output_scale=float(eager.abs().max()),
        )
        if not result.relative_error <= TOLERANCE:
            raise ExportError(
                f"{name}: the {fmt} export differs from the PyTorch model by {result.relative_error:.2e} "
                f"of the output scale (max |error| {result.max_abs_error:.3g}); expected <= {TOLERANCE:g}"
            )
        os.replace(staged, path)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    logger.info(
        "exported %s to %s (%s): max |error| %.3g = %.2e of the output scale on a fresh input",
        name,
        path,
        fmt,
        result.max_abs_error,
        result.relative_error,
    )
    return result


def example_input(model: nn.Module, config: dict, resolution: int | None = None) -> torch.Tensor:
    """A random ``[EXAMPLE_BATCH, C_in, *grid]`` input for a pretrained model's ``config.json``.

    The grid is the training grid, or ``resolution`` points along every axis.
    """
    context = config["context"]
    grid = [int(n) for n in context["grid_shape"]]
    if resolution is not None:
        if not isinstance(resolution, int) or resolution < 1:
            raise ExportError(f"--resolution must be a positive number of grid points, got {resolution!r}")
        grid = [resolution] * len(grid)
    parameter = next(model.parameters(), None)
    dtype = parameter.real.dtype if parameter is not None else torch.float32
    generator = torch.Generator().manual_seed(1)
    return torch.randn((EXAMPLE_BATCH, int(context["in_channels"]), *grid), generator=generator, dtype=dtype)


def default_path(name: str, fmt: str) -> Path:
    """Where ``sciml zoo export NAME --format FMT`` writes without ``--out``: ``NAME.onnx`` / ``NAME.pt2``."""
    _check_format(name, fmt)
    return Path(name.removeprefix("hf://").replace("/", "_") + FORMATS[fmt])


def export_zoo_model(
    name: str,
    fmt: str,
    out: str | os.PathLike[str] | None = None,
    resolution: int | None = None,
) -> ExportResult:
    """Load zoo entry ``name`` (as :func:`sciml.zoo.load` takes it), export it to ``out`` and check it.

    ``out`` defaults to :func:`default_path` in the current directory; see :func:`export_model`.
    """
    import sciml.zoo

    _check_format(name, fmt)
    path = Path(out) if out is not None else default_path(name, fmt)
    model = sciml.zoo.load(name)
    example = example_input(model, model.config, resolution)
    return export_model(model, path, fmt, example, name=f"{name} ({model.family})")
