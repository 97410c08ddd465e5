"""The model zoo: list the shipped models, load one (checked against the manifest), predict, save it as a Hub
repository folder and load it back through huggingface_hub's cache, offline.
"""

import os
import shutil
import tempfile
from pathlib import Path

import torch

import sciml.zoo
from sciml.solvers.navier_stokes import gaussian_random_field

workdir = Path(os.environ.get("SCIML_EXAMPLE_DIR") or tempfile.mkdtemp(prefix="sciml-example-"))

for entry in sciml.zoo.list():
    print(entry.row())

model = sciml.zoo.load("fno_ns64")  # physical w(t=0) [B, 1, 64, 64] -> w(t=10)
assert model.verified  # config.json and weights matched the SHA-256s of the zoo's manifest
print(f"{model.name} ({model.family}): test rel L2 on its card {model.metrics['l2']['mean']:.4f}")

x = gaussian_random_field(batch=2, resolution=64, seed=1)[:, None]  # FNO initial conditions [2, 1, 64, 64]
with torch.no_grad():
    y = model(x)
assert y.shape == (2, 1, 64, 64) and torch.isfinite(y).all()

# A local folder of your own loads with path=: checked against its own config.json, reported unverified
model.save_pretrained(workdir / "my_fno")
local = sciml.zoo.load(path=workdir / "my_fno")
assert not local.verified
with torch.no_grad():
    assert torch.equal(local(x), y)

# A Hub repository folder: weights, config.json, a model card with the Hub's YAML header, and sciml.json with
# the SHA-256 of every file (push_to_hub=True, repo_id="org/name" would also upload it).
folder = sciml.zoo.save_pretrained(model, workdir / "hub_folder")
print("Hub folder:", sorted(path.name for path in folder.iterdir()))

# What huggingface_hub's cache holds after downloading revision `main` of org/fno_ns64 (laid out by hand
# here, so that this runs offline); HF_HUB_OFFLINE=1 reads the cache only.
cache = workdir / "hf_cache"
commit = "0" * 40
repo = cache / "models--org--fno_ns64"
shutil.copytree(folder, repo / "snapshots" / commit)
(repo / "refs").mkdir()
(repo / "refs" / "main").write_text(commit)
os.environ.update(HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE="1")

from_hub = sciml.zoo.load("hf://org/fno_ns64")  # or sciml.zoo.from_pretrained("org/fno_ns64", revision=...)
assert from_hub.verified  # every file matched sciml.json
with torch.no_grad():
    assert torch.equal(from_hub(x), y)
print("loaded from the Hub cache, verified:", from_hub.verified)
