"""``python -m sciml.zoo list | build CONFIG ... | export RUN_DIR NAME | convert NAME ... --weights-dtype
float16 | verify [NAME ...] [--reproduce N]``.

``export NAME --format onnx|exported-program [--out PATH] [--resolution N]`` exports a zoo model to a file
instead (see :mod:`sciml.zoo.onnx_export`): with ``--format`` the one positional is the zoo name.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from sciml.cli import program
from sciml.errors import SciMLError
from sciml.zoo.hub import list_models, read_manifest, zoo_root

logger = logging.getLogger("sciml.zoo")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog=program("python -m sciml.zoo"), description="The pretrained model zoo."
    )
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="print the zoo's table")
    export = sub.add_parser(
        "export",
        help="export a training run as a pretrained model (RUN_DIR NAME), or with --format a zoo model "
        "to ONNX / torch.export (NAME)",
    )
    export.add_argument("run_dir", metavar="RUN_DIR|NAME", help="a run folder, or with --format a zoo name")
    export.add_argument("name", nargs="?", help="the new zoo entry's name (without --format)")
    export.add_argument(
        "--format",
        choices=["onnx", "exported-program"],
        help="export the zoo model NAME to this format, checked against PyTorch (NAME.onnx / NAME.pt2)",
    )
    export.add_argument(
        "--resolution",
        type=int,
        help="with --format: the grid size of the export (default: the training grid)",
    )
    export.add_argument(
        "--out",
        help="folder of models (default: the zoo, models/ or $SCIML_ZOO); with --format the file written "
        "(default: NAME.onnx or NAME.pt2 in the current directory)",
    )
    export.add_argument("--description", default="")
    export.add_argument("--checkpoint", default="best", choices=["best", "last"])
    export.add_argument("--n-test", type=int, default=20, help="fresh test trajectories for the card")
    export.add_argument("--command", dest="train_command", help="the command that trained the run (card)")
    build = sub.add_parser("build", help="train a config with the shared Trainer and export it to the zoo")
    build.add_argument(
        "configs", nargs="+", help="e.g. configs/zoo/fno_ns64.yaml (entry name: the file stem)"
    )
    build.add_argument("--out", help="folder of models (default: the zoo)")
    build.add_argument("--n-test", type=int, default=20, help="fresh test trajectories for the card")
    convert = sub.add_parser(
        "convert",
        help="store zoo entries again with their real weights in half precision, the error change measured",
    )
    convert.add_argument("names", nargs="+", help="zoo names")
    convert.add_argument("--weights-dtype", required=True, choices=["float16", "bfloat16"])
    verify = sub.add_parser(
        "verify", help="check zoo entries' config and weights against the manifest and load them"
    )
    verify.add_argument("names", nargs="*", help="zoo names (default: every entry of the manifest)")
    verify.add_argument(
        "--reproduce",
        type=int,
        metavar="N",
        help="also regenerate the first N test trajectories of each card and check its numbers within 2%%",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.action == "list":
            print(f"zoo: {zoo_root()}")
            entries = list_models()
            width = max([len(e.name) for e in entries] + [4])
            family = max([len(e.family) for e in entries] + [6])
            columns = f"{'params':>10} {'MiB':>7} {'test L2':>8}  description"
            print(f"{'name':<{width}} {'family':<{family}} {columns}")
            for entry in entries:
                print(entry.row(width, family))
        elif args.action == "export" and args.format is not None:
            from sciml.zoo.onnx_export import export_zoo_model

            if args.name is not None:
                parser.error(f"export --format takes one zoo name, got {args.run_dir!r} and {args.name!r}")
            result = export_zoo_model(args.run_dir, args.format, out=args.out, resolution=args.resolution)
            print(
                f"{result.path} ({result.format}; max |error| vs PyTorch {result.max_abs_error:.3g} = "
                f"{result.relative_error:.2e} of the output scale)"
            )
        elif args.action == "export":
            from sciml.zoo.export import export_run

            if args.name is None:
                parser.error("export RUN_DIR NAME needs a name (or --format to export a zoo model to a file)")
            if args.resolution is not None:
                parser.error("--resolution applies to export --format only")

            folder = export_run(
                args.run_dir,
                args.name,
                out=args.out,
                description=args.description,
                checkpoint=args.checkpoint,
                n_test=args.n_test,
                command=args.train_command,
            )
            print(folder)
        elif args.action == "convert":
            from sciml.zoo.export import convert_entry

            for name in args.names:
                print(convert_entry(name, args.weights_dtype))
        elif args.action == "build":
            from sciml.zoo.export import build_entry

            for config in args.configs:
                print(build_entry(config, out=args.out, n_test=args.n_test))
        else:
            from sciml.zoo.pretrained import PretrainedOperator

            if args.reproduce is not None and args.reproduce < 1:
                parser.error(f"--reproduce {args.reproduce}: expected a positive number of test trajectories")
            misses = 0
            for name in args.names or sorted(read_manifest()["models"]):
                model = PretrainedOperator.from_pretrained(name)
                print(f"{name}: ok (verified against {zoo_root() / 'manifest.json'})")
                if args.reproduce is not None and model.metrics:
                    misses += _reproduce_card(model, args.reproduce)
            if misses:
                raise SciMLError(
                    f"zoo verify --reproduce: {misses} card value(s) not reproduced (listed above)"
                )
    except SciMLError as err:
        logger.error("%s", err)
        return 2
    return 0


def _reproduce_card(model: Any, n_trajectories: int) -> int:
    """Regenerate the first test trajectories of a model's card and compare; prints and counts the misses."""
    from sciml.zoo.evaluation import compare_with_card, evaluate_pretrained

    measured = evaluate_pretrained(model, n_trajectories=n_trajectories, progress=False)
    misses = compare_with_card(measured, model.metrics)
    for line in misses:
        print(f"{model.name}: {line}")
    if not misses:
        print(f"{model.name}: card reproduced on its first {n_trajectories} test trajectories (within 2%)")
    return len(misses)


if __name__ == "__main__":
    sys.exit(main())
