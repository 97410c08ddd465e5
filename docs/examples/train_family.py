"""One family (Transform Once, T1) trained for one epoch with the shared Trainer, from Python.

`sciml train t1_ns` does the same from the command line (and also normalizes the fields and writes the
evaluation report); here each piece is called by hand: a tiny generated dataset, the train/valid split,
the model from the registry, the Trainer.
"""

import json
import os
import tempfile
from pathlib import Path

import torch

import sciml.datasets as sd
from sciml.datasets.generate import generate
from sciml.datasets.recipes import Recipe
from sciml.models import ModelContext, build_model
from sciml.training import Trainer, load_config

workdir = Path(os.environ.get("SCIML_EXAMPLE_DIR") or tempfile.mkdtemp(prefix="sciml-example-"))

recipe = Recipe.from_mapping(
    {
        "name": "tiny",
        "solver": {"resolution": 16, "viscosity": 1e-3, "forcing": "fno", "dt": 0.01, "stepper": "heun-cn"},
        "output": {"t_final": 1.0, "record_every": 0.5},
        "n_trajectories": 8,
        "batch_size": 8,
    }
)
path = generate(recipe, workdir / "tiny.hdf5", progress=False, device="cpu")

# the shipped T1 config (configs/t1_ns.yaml), its values overridden as on the command line
overrides = ["train.epochs=1", "train.progress=false", "model.modes=8", "data.batch_size=2"]
config = load_config("t1_ns", overrides)

trajectories = sd.open(path, fields="vorticity")  # [T, 1, 16, 16] per trajectory
splits = sd.split_by_trajectory(len(trajectories), (0.75, 0.25, 0.0), seed=0)
train_set = sd.InitialToFinalDataset(trajectories, 0, -1, trajectory_indices=splits["train"])  # w(0) -> w(1)
valid_set = sd.InitialToFinalDataset(trajectories, 0, -1, trajectory_indices=splits["valid"])

meta = trajectories.metadata
context = ModelContext(
    in_channels=1,
    out_channels=1,
    grid_shape=meta.grid_shape,
    domain_lengths=meta.domain_lengths,
    periodic=meta.periodic,
)
torch.manual_seed(config.train.seed)
model = build_model(config.model_name, config.model_kwargs, context)  # "t1" with the config's arguments

trainer = Trainer(model, config, train_set, valid_set, run_dir=workdir / "run", metadata=meta)
history = trainer.fit()  # one row per epoch; also written to run/metrics.jsonl

last = history[-1]
print(f"{config.model_name}: epoch {last['epoch']}, train loss {last['train_loss']:.3f}", end=", ")
print(f"valid rel L2 {last['valid_l2']:.3f}")
assert len(history) == 1 and 0 < last["valid_l2"] < 2
rows = [json.loads(line) for line in (workdir / "run" / "metrics.jsonl").read_text().splitlines()]
assert rows[-1]["valid_l2"] == last["valid_l2"]
assert (workdir / "run" / "checkpoints" / "last.pt").is_file()
x = train_set[0]["x"][None].to(trainer.device)  # [1, 1, 16, 16], where the model is (CPU or GPU)
with torch.no_grad():
    prediction = trainer.raw_model.eval()(x)
print("prediction:", tuple(prediction.shape))
