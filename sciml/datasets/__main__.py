"""Command line of the datasets package.

``python -m sciml.datasets generate RECIPE [--out PATH] [--format well|mat]`` runs a recipe: a YAML file or
the name of a shipped one (``ns_quick``, ``datasets/ns_quick.yaml``); ``python -m sciml.datasets info FILE``
prints what a reader finds in a data file (or URL); ``python -m sciml.datasets download URL [--out PATH]
[--sha256 HEX]`` makes a local copy of a remote file, atomically, with its SHA-256 beside it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from sciml.cli import program
from sciml.errors import ConfigError, SciMLError

logger = logging.getLogger("sciml.datasets")


def _ritz_overrides(recipe: Any, args: argparse.Namespace) -> Any:
    """A ``poisson_ritz`` recipe with the command line's ``--seed``; flags that do not apply are refused."""
    from dataclasses import replace

    misplaced = [flag for flag in ("format", "n", "device") if getattr(args, flag) is not None]
    if misplaced:
        raise ConfigError(
            f"generate {args.recipe}: --{', --'.join(misplaced)} do(es) not apply to a poisson_ritz recipe "
            "(a .pt file of x/y pairs made on the CPU, of size scenes x samples_per_scene): "
            "only --out and --seed do"
        )
    return recipe if args.seed is None else replace(recipe, seed=args.seed)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog=program("python -m sciml.datasets"), description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="generate a dataset from a recipe YAML")
    gen.add_argument("recipe", help="recipe file or shipped name, e.g. ns_quick or datasets/ns_quick.yaml")
    gen.add_argument("--out", help="output file (default: the cache, .cache/sciml or $SCIML_CACHE)")
    gen.add_argument("--format", choices=["well", "mat"], help="The Well HDF5 (default) or FNO .mat v7.3")
    gen.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    gen.add_argument("--n", type=int, help="number of trajectories (overrides the recipe)")
    gen.add_argument("--seed", type=int, help="seed (overrides the recipe)")
    gen.add_argument("--no-progress", action="store_true", help="no progress bar")
    info = sub.add_parser("info", help="print the metadata a reader finds in a file")
    info.add_argument("path")
    info.add_argument("--format", help="force a reader")
    down = sub.add_parser("download", help="copy a remote file (https://, s3://, hf://, ...) to a local file")
    down.add_argument("url")
    down.add_argument(
        "--out",
        help="local file, or folder (existing, or ending in /); default: <cache>/downloads/<scheme>/<host>/",
    )
    down.add_argument("--sha256", help="expected SHA-256 (hex); a mismatch keeps nothing")
    down.add_argument("--force", action="store_true", help="download even when a verified copy exists")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "generate":
            from sciml.datasets import poisson_ritz
            from sciml.datasets.generate import generate
            from sciml.datasets.recipes import load_recipe

            recipe = load_recipe(args.recipe)
            if isinstance(recipe, poisson_ritz.PoissonRitzRecipe):  # DCDM's data: a .pt file of x/y pairs
                print(poisson_ritz.generate(_ritz_overrides(recipe, args), args.out))
                return 0
            path = generate(
                recipe,
                args.out,
                file_format=args.format or "well",
                device=args.device,
                n_trajectories=args.n,
                seed=args.seed,
                progress=not args.no_progress,
            )
            print(path)
        elif args.command == "download":
            from sciml.datasets.remote import download

            done = download(args.url, args.out, sha256=args.sha256, force=args.force)
            print(f"{done.sha256}  {done.path}")
        else:
            from sciml.datasets.registry import open_dataset

            with open_dataset(args.path, format=args.format) as ds:
                meta = ds.metadata.to_dict()
                for key in ("coords",):
                    meta[key] = {k: f"{len(v)} values" for k, v in meta[key].items()}
                print(json.dumps(meta, indent=2, default=str))
    except SciMLError as err:
        logger.error("%s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
