"""Zoo integrity: names resolve only inside the zoo and are checked against its manifest; local folders load
only by ``path=`` and are unverified; files named in ``config.json`` stay in their folder; a malformed
``config.json`` is one :class:`DataFormatError` naming the file and the key.

Every test works on a copy of the shipped ``fno_ns64`` entry in ``tmp_path`` (``SCIML_ZOO`` points there);
``models/`` itself is never modified.
"""

import builtins
import io
import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import sciml.zoo
from sciml.errors import ConfigError, DataFormatError, SciMLError
from sciml.evaluate import main as evaluate_main
from sciml.zoo.files import IntegrityError, sha256_file
from sciml.zoo.hub import read_manifest, register
from sciml.zoo.weights import read_weights

SHIPPED = Path(__file__).parents[2] / "models"
NAME = "fno_ns64"


@pytest.fixture
def zoo_copy(tmp_path, monkeypatch) -> Path:
    """A zoo in ``tmp_path/zoo`` holding a copy of the shipped ``fno_ns64`` and its manifest entry."""
    root = tmp_path / "zoo"
    shutil.copytree(SHIPPED / NAME, root / NAME)
    manifest = {"format_version": 1, "models": {NAME: read_manifest(SHIPPED)["models"][NAME]}}
    (root / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("SCIML_ZOO", str(root))
    return root


def edit_config(folder: Path, edit) -> None:
    """Apply ``edit`` to ``folder/config.json`` (a dict -> None function) and write it back."""
    path = folder / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config, indent=2))


def rewrite_weights(folder: Path, scale: float) -> None:
    """Scale every weight of ``folder`` (still a valid model) and record the new hash in its config.json."""
    weights = folder / "model.safetensors"
    with safe_open(str(weights), "pt") as handle:  # the header (half-precision complex marker) kept
        metadata = handle.metadata()
    state = {k: v * scale for k, v in load_file(str(weights)).items()}
    save_file(state, str(weights), metadata=metadata)
    edit_config(folder, lambda c: c["weights"].update(sha256=sha256_file(weights)))


def same_weights(model: sciml.zoo.PretrainedOperator, weights: Path) -> bool:
    reference = read_weights(weights)  # complex ones stored as float16 parts made complex again
    state = model.operator.model.state_dict()
    return all(torch.equal(state[k], v.to(state[k].dtype)) for k, v in reference.items())


def test_a_zoo_name_is_verified_against_the_manifest(zoo_copy):
    model = sciml.zoo.load(NAME)
    assert model.verified is True
    assert same_weights(model, SHIPPED / NAME / "model.safetensors")


def test_a_tampered_entry_is_refused_by_name_and_by_its_path_as_a_name(zoo_copy, monkeypatch):
    folder = zoo_copy / NAME
    rewrite_weights(folder, 2.0)  # weights and the hash in its own config.json both changed
    with pytest.raises(IntegrityError, match="manifest"):
        sciml.zoo.load(NAME)
    with pytest.raises(ConfigError, match=r"not a zoo name.*path="):
        sciml.zoo.load(str(folder))
    with pytest.raises(ConfigError, match="path="):
        sciml.zoo.PretrainedOperator.from_pretrained(folder)  # a Path is not a name either
    monkeypatch.chdir(zoo_copy)
    with pytest.raises(ConfigError, match=r"path='\./fno_ns64'"):
        sciml.zoo.load(f"./{NAME}")


def test_a_folder_in_the_working_directory_never_shadows_a_zoo_name(zoo_copy, tmp_path, monkeypatch):
    impostor = tmp_path / "cwd" / NAME
    shutil.copytree(SHIPPED / NAME, impostor)
    rewrite_weights(impostor, -1.0)  # self-consistent, loadable, but not the zoo's weights
    monkeypatch.chdir(tmp_path / "cwd")
    model = sciml.zoo.load(NAME)
    assert model.verified is True
    assert same_weights(model, SHIPPED / NAME / "model.safetensors")
    local = sciml.zoo.load(path=NAME)  # the folder loads only when asked for explicitly
    assert local.verified is False
    assert same_weights(local, impostor / "model.safetensors")


def test_a_local_folder_loads_by_path_and_is_reported_unverified(zoo_copy, tmp_path, caplog):
    zoo_model = sciml.zoo.load(NAME)
    folder = zoo_model.save_pretrained(tmp_path / "exported")
    with caplog.at_level(logging.WARNING, logger="sciml.zoo"):
        local = sciml.zoo.load(path=folder)
    assert local.verified is False
    assert any("UNVERIFIED" in r.getMessage() and str(folder) in r.getMessage() for r in caplog.records)
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(local(x), zoo_model(x), rtol=0, atol=0)
    # its own config.json still guards consistency: changed weights with the old hash are refused
    save_file({k: v * 2 for k, v in load_file(str(folder / "model.safetensors")).items()}, str(folder / "x"))
    (folder / "x").replace(folder / "model.safetensors")
    with pytest.raises(IntegrityError, match=r"config\.json"):
        sciml.zoo.load(path=folder)


def test_exactly_one_of_name_and_path(zoo_copy):
    with pytest.raises(ConfigError, match="exactly one"):
        sciml.zoo.load()
    with pytest.raises(ConfigError, match="exactly one"):
        sciml.zoo.load(NAME, path=zoo_copy / NAME)


def record_opened_files(monkeypatch) -> list[Path]:
    """From now on, the resolved path of every file opened through Python's ``open`` or ``io.open``."""
    paths: list[Path] = []
    real_open = builtins.open

    def recording_open(file, *args, **kwargs):
        if isinstance(file, str | Path):
            paths.append(Path(file).resolve())
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", recording_open)
    monkeypatch.setattr(io, "open", recording_open)  # what pathlib uses
    return paths


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_weights_outside_the_folder_are_refused_before_opening(zoo_copy, tmp_path, kind, monkeypatch):
    folder = tmp_path / "local"
    shutil.copytree(SHIPPED / NAME, folder)
    outside = tmp_path / "outside.safetensors"
    shutil.copy(folder / "model.safetensors", outside)
    if kind == "dotdot":
        target = "../../../etc/hostname"
    elif kind == "absolute":
        target = str(outside)
    else:
        target = "linked.safetensors"
        (folder / target).symlink_to(outside)
    edit_config(folder, lambda c: c["weights"].update(file=target))
    opened = record_opened_files(monkeypatch)
    with pytest.raises(DataFormatError, match="outside the model folder") as err:
        sciml.zoo.load(path=folder)
    message = str(err.value)
    assert "config.json" in message and "'weights.file'" in message and target in message
    assert "\n" not in message
    assert (folder / "config.json").resolve() in opened  # the recorder sees what sciml reads
    assert outside.resolve() not in opened and (folder / target).resolve() not in opened


def test_register_refuses_weights_outside_the_folder(tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(SHIPPED / NAME, folder)
    edit_config(folder, lambda c: c["weights"].update(file="../../../etc/hostname"))
    with pytest.raises(DataFormatError, match=r"weights\.file"):
        register(folder, tmp_path)


MALFORMED = [
    ("normalization.x_mean", "abc"),
    ("normalization.x_mean", [0.0, 0.0]),  # one input channel
    ("normalization.y_std", []),
    ("normalization.x_std", [0.0]),
    ("normalization.y_mean", ["a"]),
    ("model.kwargs", [12, 24, 4]),
    ("model.name", 3),
    ("context.in_channels", "one"),
    ("weights.sha256", 5),
    ("weights.file", "model\x00.safetensors"),
    ("weights.file", "."),
]


@pytest.mark.parametrize(("key", "value"), MALFORMED)
def test_a_malformed_config_is_one_error_naming_file_and_key(zoo_copy, tmp_path, key, value):
    folder = tmp_path / "local"
    shutil.copytree(SHIPPED / NAME, folder)
    section, field = key.split(".")
    edit_config(folder, lambda c: c[section].update({field: value}))
    with pytest.raises(DataFormatError) as err:
        sciml.zoo.load(path=folder)
    assert err.value.path == str(folder / "config.json")
    assert err.value.key == key
    assert f"[key {key!r}]" in str(err.value) and "\n" not in str(err.value)


def test_weights_of_another_model_are_one_line_naming_both_files(zoo_copy, tmp_path):
    folder = tmp_path / "local"
    shutil.copytree(SHIPPED / NAME, folder)
    edit_config(folder, lambda c: c["model"]["kwargs"].update(width=32))  # the weights have width 24
    with pytest.raises(DataFormatError, match=r"of another shape .*\[24, 1, 1\] in the file") as err:
        sciml.zoo.load(path=folder)
    assert err.value.path == str(folder / "model.safetensors")
    assert str(folder / "config.json") in str(err.value) and "\n" not in str(err.value)


def test_a_malformed_config_in_the_zoo_is_the_same_error(zoo_copy):
    edit_config(zoo_copy / NAME, lambda c: c["model"].update(kwargs=[12]))
    with pytest.raises(DataFormatError, match=r"\[key 'model.kwargs'\]"):
        register(zoo_copy / NAME, zoo_copy)
    manifest = json.loads((zoo_copy / "manifest.json").read_text())
    manifest["models"][NAME]["config_sha256"] = sha256_file(zoo_copy / NAME / "config.json")
    (zoo_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataFormatError, match=r"config\.json \[key 'model.kwargs'\]"):
        sciml.zoo.load(NAME)


def test_evaluate_takes_zoo_names_only(zoo_copy, caplog):
    assert evaluate_main([f"zoo:{zoo_copy / NAME}"]) == 2
    assert f"pretrained:{zoo_copy / NAME}" in caplog.text


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 70) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
FUZZED_KEYS = [
    "model.name",
    "model.kwargs",
    "context.in_channels",
    "context.out_channels",
    "context.grid_shape",
    "context.domain_lengths",
    "normalization.x_mean",
    "normalization.x_std",
    "normalization.y_mean",
    "normalization.y_std",
    "weights.file",
    "weights.sha256",
    "task.mode",
    "format_version",
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(FUZZED_KEYS), value=JSON_VALUES)
def test_fuzzed_config_values_end_in_one_sciml_error(tmp_path, key, value):
    folder = tmp_path / "fuzz"
    if not folder.exists():
        shutil.copytree(SHIPPED / NAME, folder)
    original = (SHIPPED / NAME / "config.json").read_text()
    config = json.loads(original)
    *parents, last = key.split(".")
    section = config
    for part in parents:
        section = section[part]
    section[last] = value
    (folder / "config.json").write_text(json.dumps(config))
    try:
        sciml.zoo.load(path=folder)
    except SciMLError as err:
        assert "\n" not in str(err) and str(folder) in str(err)
