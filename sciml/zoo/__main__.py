"""``python -m sciml.zoo list | build CONFIG ... | export RUN_DIR NAME | verify [NAME ...]``."""

from __future__ import annotations

import argparse
import logging
import sys

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
    export = sub.add_parser("export", help="export a training run as a pretrained model")
    export.add_argument("run_dir")
    export.add_argument("name")
    export.add_argument("--out", help="folder of models (default: the zoo, models/ or $SCIML_ZOO)")
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
    verify = sub.add_parser(
        "verify", help="check zoo entries' config and weights against the manifest and load them"
    )
    verify.add_argument("names", nargs="*", help="zoo names (default: every entry of the manifest)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.action == "list":
            print(f"zoo: {zoo_root()}")
            print(f"{'name':<22} {'family':<9} {'params':>9} {'MiB':>7} {'test L2':>8}  description")
            for entry in list_models():
                print(entry.row())
        elif args.action == "export":
            from sciml.zoo.export import export_run

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
        elif args.action == "build":
            from sciml.zoo.export import build_entry

            for config in args.configs:
                print(build_entry(config, out=args.out, n_test=args.n_test))
        else:
            from sciml.zoo.pretrained import PretrainedOperator

            for name in args.names or sorted(read_manifest()["models"]):
                PretrainedOperator.from_pretrained(name)
                print(f"{name}: ok (verified against {zoo_root() / 'manifest.json'})")
    except SciMLError as err:
        logger.error("%s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
