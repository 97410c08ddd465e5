"""Concurrent and interrupted generation (issue 13, item 2).

Two processes generating one output at once both end with a complete file, writers never touch each
other's temporary file, killed writers' leftovers are swept, and every file records its generation settings.
"""

import errno
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml

import sciml.datasets as sd
from sciml.datasets.generate import generate
from sciml.datasets.recipes import Recipe
from sciml.datasets.writers.the_well import TheWellWriter
from sciml.errors import ConfigError

# A child process: import everything, say it is ready, wait until the other child is ready too, then
# generate (``generate`` mode: explicit output; ``cache`` mode: the cache lookup of ``sciml.train``).
CHILD = """
import logging, sys, time
from pathlib import Path
mode, recipe_file, target, ready_dir, me = sys.argv[1:]
logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
from sciml.datasets.generate import generate
from sciml.datasets.recipes import Recipe
if mode == "cache":
    from sciml.training.config import DataConfig
    from sciml.training.data import resolve_data_path
ready = Path(ready_dir)
(ready / me).touch()
deadline = time.monotonic() + 60
while len(list(ready.iterdir())) < 2 and time.monotonic() < deadline:
    time.sleep(0.001)
if mode == "generate":
    print(generate(Recipe.from_yaml(recipe_file), target, progress=False, device="cpu"))
else:
    print(resolve_data_path(DataConfig(recipe=recipe_file)))
"""

REPO = Path(__file__).resolve().parents[2]

# one trajectory of two 4x4 frames: arguments of a writer after its path
SMALL_FILE = {
    "n_trajectories": 1,
    "times": [0.0, 1.0],
    "grid_shape": (4, 4),
    "domain_lengths": (1.0, 1.0),
    "viscosity": 1e-3,
}


def racing_recipe(tmp_path: Path) -> Path:
    """A recipe that takes about half a second, written in two batches so that both writers overlap."""
    recipe = Recipe.from_mapping(
        {
            "name": "race",
            "solver": {"resolution": 16, "viscosity": 1e-3, "dt": 0.01, "stepper": "heun-cn"},
            "output": {"t_final": 3.0, "record_every": 0.5, "resolution": 8},
            "n_trajectories": 2,
            "batch_size": 1,
        }
    )
    path = tmp_path / "race.yaml"
    path.write_text(recipe.to_yaml())
    return path


def run_two_children(mode: str, recipe_file: Path, target: Path, tmp_path: Path) -> list[tuple[int, str]]:
    """Start two generating processes at the same instant; their exit codes and stdout + stderr."""
    ready = tmp_path / "ready"
    ready.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SCIML_CACHE": str(target), "CUDA_VISIBLE_DEVICES": ""}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, mode, str(recipe_file), str(target), str(ready), str(k)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for k in range(2)
    ]
    return [(child.wait(timeout=120), child.stdout.read()) for child in children]


def test_two_processes_generating_one_output_both_get_a_complete_file(tmp_path):
    recipe_file = racing_recipe(tmp_path)
    out_dir = tmp_path / "out"
    out = out_dir / "race.hdf5"
    results = run_two_children("generate", recipe_file, out, tmp_path)
    for code, output in results:
        assert code == 0, output
        assert "Traceback" not in output, output
        assert output.strip().splitlines()[-1] == str(out)
    ds = sd.open(out)
    assert len(ds) == 2 and ds.metadata.grid_shape == (8, 8) and ds.metadata.n_times == 7
    assert ds.read(1).shape == (7, 3, 8, 8)
    assert sorted(p.name for p in out_dir.iterdir()) == ["race.hdf5"]  # no temporary or lock file


def test_two_training_runs_on_an_empty_cache_generate_once(tmp_path):
    recipe_file = racing_recipe(tmp_path)
    cache = tmp_path / "cache"
    results = run_two_children("cache", recipe_file, cache, tmp_path)
    paths = set()
    for code, output in results:
        assert code == 0, output
        assert "Traceback" not in output, output
        paths.add(output.strip().splitlines()[-1])
    assert len(paths) == 1
    path = Path(paths.pop())
    assert path.parent == cache
    ds = sd.open(path)
    assert len(ds) == 2 and ds.read(0).shape == (7, 3, 8, 8)
    # the second process waited for the first and used its file instead of solving the recipe again
    assert sum("sciml.datasets.generate: wrote" in output for _, output in results) == 1
    assert [p.name for p in cache.iterdir()] == [path.name]


def test_generated_file_records_the_generation_settings(tmp_path):
    recipe = Recipe.from_yaml(racing_recipe(tmp_path))
    path = generate(recipe, tmp_path / "r.hdf5", progress=False, device="cpu", n_trajectories=1)
    with h5py.File(path, "r") as f:
        settings = f.attrs["generation"]
        stored_recipe = Recipe.from_mapping(yaml.safe_load(f.attrs["recipe"]))
    settings = json.loads(settings)
    assert settings["torch_version"] == torch.__version__
    assert settings["torch_num_threads"] == torch.get_num_threads()
    assert settings["OMP_NUM_THREADS"] == os.environ.get("OMP_NUM_THREADS")
    assert settings["device"] == "cpu"
    assert settings["dtype"] == "float32"
    assert settings["first_index"] == 0
    assert stored_recipe.n_trajectories == 1 and stored_recipe.solver.resolution == 16
    # the .mat layout carries the same record (read back through the reader's parameters)
    mat = sd.open(generate(recipe, tmp_path / "r.mat", file_format="mat", progress=False, device="cpu"))
    assert json.loads(mat.metadata.parameters["generation"])["torch_version"] == torch.__version__


def test_two_writers_of_one_path_never_touch_each_others_file(tmp_path):
    out = tmp_path / "w.hdf5"
    first = TheWellWriter(out, **SMALL_FILE)
    second = TheWellWriter(out, **SMALL_FILE)
    ones = np.ones((1, 2, 4, 4), dtype=np.float32)
    first.write(0, ones, np.stack([ones, ones], -1))
    first.close()
    assert torch.all(sd.open(out).read(0) == 1)
    second.write(0, 2 * ones, np.stack([ones, ones], -1))
    second.close()
    assert torch.all(sd.open(out).read(0)[:, 0] == 2)
    assert [p.name for p in tmp_path.iterdir()] == ["w.hdf5"]


def test_generation_removes_temporary_files_of_killed_writers_only(tmp_path):
    out = tmp_path / "s.hdf5"
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, signal\n"
            "from sciml.datasets.writers.the_well import TheWellWriter\n"
            f"TheWellWriter({str(out)!r}, **{SMALL_FILE!r})\n"
            "os.kill(os.getpid(), signal.SIGKILL)",
        ],
        cwd=REPO,
    )
    assert killed.returncode == -signal.SIGKILL  # died without cleaning up, as on a kill -9
    left_by_killed = list(tmp_path.glob(".s.hdf5.*.partial"))
    assert len(left_by_killed) == 1
    live = TheWellWriter(out, **SMALL_FILE)  # a writer still at work in this process
    recipe = Recipe.from_yaml(racing_recipe(tmp_path))
    generate(recipe, out, progress=False, device="cpu", n_trajectories=1)
    assert not left_by_killed[0].exists()
    assert live.tmp_path.exists()
    live.abort()
    assert len(sd.open(out)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["race.yaml", "s.hdf5"]


def test_generation_without_flock_still_publishes_complete_files(tmp_path, monkeypatch, caplog):
    def no_flock(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    recipe = Recipe.from_yaml(racing_recipe(tmp_path))
    out = tmp_path / "n.hdf5"
    with caplog.at_level(logging.WARNING):
        generate(recipe, out, progress=False, device="cpu", n_trajectories=1)
    assert "no flock" in caplog.text
    assert len(sd.open(out)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.hdf5", "race.yaml"]


@pytest.mark.parametrize("name", ["../escape", "/abs", "a/b", ".hidden", "", "a\\b"])
def test_recipe_name_must_be_a_plain_file_name(name):
    with pytest.raises(ConfigError, match="plain file name"):
        Recipe.from_mapping(
            {
                "name": name,
                "solver": {"resolution": 16, "viscosity": 1e-3, "dt": 0.01},
                "output": {"t_final": 0.1, "record_every": 0.1},
                "n_trajectories": 1,
            }
        )
