"""The quickstart (`sciml train quickstart`) at smoke scale: a smaller dataset, one epoch, in seconds.

The same steps as the full run: the shipped config `configs/quickstart.yaml` generates its dataset from a
recipe into the cache, trains an FNO with the shared Trainer, and evaluates it at the training resolution
and zero-shot at a finer one. Only the sizes shrink: the `ns_quick` recipe is solved on 32^2 (stored at
16^2) up to t = 1 for 8 trajectories, and the model is evaluated zero-shot at 32^2.
"""

import dataclasses
import json
import os
import tempfile
from pathlib import Path

import sciml.train
from sciml.datasets.recipes import Recipe

workdir = Path(os.environ.get("SCIML_EXAMPLE_DIR") or tempfile.mkdtemp(prefix="sciml-example-"))
os.environ["SCIML_CACHE"] = str(workdir / "cache")  # generated data go here instead of ./.cache/sciml

quick = Recipe.from_yaml("ns_quick")  # a shipped recipe, by name (datasets/ns_quick.yaml)
smoke = dataclasses.replace(
    quick,
    n_trajectories=8,
    batch_size=8,
    solver=dataclasses.replace(quick.solver, resolution=32, dt=0.01),
    output=dataclasses.replace(quick.output, resolution=16, t_final=1.0, record_every=0.5),
)
recipe_file = workdir / "ns_smoke.yaml"
recipe_file.write_text(smoke.to_yaml())

# the same as: sciml train quickstart data.recipe=ns_smoke.yaml train.epochs=1 ... --run-dir run
exit_code = sciml.train.main(
    [
        "quickstart",  # the shipped config, by name
        f"data.recipe={recipe_file}",
        "train.epochs=1",
        "eval.resolutions=[32]",
        "eval.plots=false",
        "train.progress=false",
        "--run-dir",
        str(workdir / "run"),
    ]
)
assert exit_code == 0

report = json.loads((workdir / "run" / "report" / "metrics.json").read_text())
for resolution, errors in report["test"].items():
    l2 = errors["l2"]["mean"]
    h1, h_minus_1 = errors["h1"]["mean"], errors["h-1"]["mean"]
    print(f"test @{resolution}: rel L2 {l2:.3f}, H1 {h1:.3f}, H-1 {h_minus_1:.3f}")
    assert 0 < l2 < 2  # one epoch learns little; the full quickstart reaches about 1e-2
assert sorted(report["test"]) == ["16", "32"]  # the training resolution and the zero-shot one
print("run folder:", sorted(path.name for path in (workdir / "run").iterdir()))
