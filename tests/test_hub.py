"""The model hub: a Hub repository folder (save_pretrained) loaded offline through huggingface_hub's cache.

The smallest model of the committed zoo is written with ``sciml.zoo.save_pretrained`` and its files are laid
out as huggingface_hub documents its cache (``models--org--name/{blobs, snapshots/<commit>, refs/<ref>}``,
snapshot files linking to the blobs); with ``HF_HUB_CACHE`` there and ``HF_HUB_OFFLINE=1``, the real
``huggingface_hub.snapshot_download`` resolves names and revisions. Nothing reaches the network.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
from pathlib import Path

import huggingface_hub
import pytest
import torch

import sciml.zoo
from sciml.errors import ConfigError, DataFormatError, SciMLError
from sciml.zoo.card import hub_metadata, render_card
from sciml.zoo.files import IntegrityError, sha256_file
from sciml.zoo.remote import HubError, load_snapshot

SOURCE = "mg_tfno_ns64"  # the smallest committed zoo entry
REPO = "sciml-test/mg-tfno"
FIRST = "1" * 40  # commit hashes of the cached snapshots
SECOND = "2" * 40
FILES = ["README.md", "config.json", "model.safetensors", "sciml.json"]


def lay_out_snapshot(cache: Path, repo_id: str, folder: Path, commit: str, refs: tuple[str, ...]) -> Path:
    """Put ``folder``'s files into huggingface_hub's cache layout as ``commit`` of ``repo_id``.

    Each file's content becomes ``blobs/<sha256>``, the snapshot holds relative links to them, and each of
    ``refs`` (a branch or tag) names the commit.
    """
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir(exist_ok=True)
    for file in folder.iterdir():
        data = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / file.name).symlink_to(os.path.relpath(blob, snapshot))
    (repo / "refs").mkdir(exist_ok=True)
    for ref in refs:
        (repo / "refs" / ref).write_text(commit)
    return snapshot


def outputs(model: torch.nn.Module) -> torch.Tensor:
    """The model on a fixed random input of the zoo's 64^2 grid."""
    x = torch.randn(2, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return model(x)


@pytest.fixture(scope="module")
def source() -> sciml.zoo.PretrainedOperator:
    return sciml.zoo.load(SOURCE)


@pytest.fixture(scope="module")
def exported(source, tmp_path_factory) -> Path:
    """The zoo model written as a Hub repository folder."""
    return sciml.zoo.save_pretrained(source, tmp_path_factory.mktemp("export") / "mg-tfno", repo_id=REPO)


@pytest.fixture
def hub_cache(tmp_path, exported, monkeypatch) -> Path:
    """An offline Hugging Face cache holding ``exported`` as commit FIRST, on ``main``."""
    cache = tmp_path / "hf_cache"
    lay_out_snapshot(cache, REPO, exported, FIRST, refs=("main",))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def cached(cache: Path, name: str, commit: str = FIRST) -> Path:
    return cache / f"models--{REPO.replace('/', '--')}" / "snapshots" / commit / name


def test_save_pretrained_writes_the_hub_layout(exported, source):
    assert sorted(p.name for p in exported.iterdir()) == FILES
    assert list(exported.parent.iterdir()) == [exported]  # no staging folder left behind
    hashes = json.loads((exported / "sciml.json").read_text())
    assert hashes["files"] == {name: sha256_file(exported / name) for name in FILES[:3]}
    config = json.loads((exported / "config.json").read_text())
    assert config["weights"]["sha256"] == source.config["weights"]["sha256"]
    # the card: the Hub's metadata, read back by huggingface_hub, then the usual card
    text = (exported / "README.md").read_text()
    card = huggingface_hub.ModelCard(text)
    assert card.data.library_name == "sciml" and card.data.license == "mit"
    assert card.data.datasets == [config["dataset"]["recipe"]["name"]]
    assert "mg_tfno" in card.data.tags
    values = {r.metric_type: r.metric_value for r in card.data.eval_results}
    metrics = config["metrics"]
    assert values == {
        "relative_l2": metrics["l2"]["mean"],
        "relative_h1": metrics["h1"]["mean"],
        "relative_h-1": metrics["h-1"]["mean"],
    }
    assert {r.dataset_split for r in card.data.eval_results} == {"test"}
    front, body = text.split("\n---\n\n", 1)
    assert front.startswith("---\n") and body == render_card(config, repo_id=REPO)
    zoo_card = render_card(config).splitlines()  # the committed zoo's rendering: no metadata
    changed = [(a, b) for a, b in zip(zoo_card, body.splitlines(), strict=True) if a != b]
    assert changed == [
        (
            f'model = sciml.zoo.load("{SOURCE}")  # offline; SHA-256 checked',
            f'model = sciml.zoo.from_pretrained("{REPO}")  # SHA-256 of every file checked',
        ),
        (
            f"Reproduce: `python -m sciml.evaluate zoo:{SOURCE}` (generates the test trajectories, then "
            "checks every number above within 2%).",
            f"Reproduce: `python -m sciml.evaluate zoo:hf://{REPO}` (generates the test trajectories, then "
            "checks every number above within 2%).",
        ),
    ]


def test_the_hub_cards_reproduce_command_runs(hub_cache):
    """``sciml.evaluate zoo:hf://org/name``, as the Hub card says, loads through the verified Hub path."""
    from sciml.evaluate import main as evaluate_main

    assert evaluate_main([f"zoo:hf://{REPO}", "--n-test", "1"]) == 0  # the first trajectory, reproduced
    assert evaluate_main(["zoo:some/folder", "--n-test", "1"]) == 2  # a path is still refused


def test_load_from_the_hub_cache_offline_equals_the_source(hub_cache, source):
    expected = outputs(source)
    by_uri = sciml.zoo.load(f"hf://{REPO}")
    by_id = sciml.zoo.from_pretrained(REPO)
    for model in (by_uri, by_id):
        assert model.verified and not model.training
        torch.testing.assert_close(outputs(model), expected, rtol=0, atol=0)


def test_revisions_are_pinned(hub_cache, source, tmp_path):
    changed = copy.deepcopy(source)
    with torch.no_grad():
        for parameter in changed.parameters():
            parameter.mul_(1.5)
    second = sciml.zoo.save_pretrained(changed, tmp_path / "second", repo_id=REPO)
    lay_out_snapshot(hub_cache, REPO, second, SECOND, refs=("main",))  # main moves on
    (hub_cache / f"models--{REPO.replace('/', '--')}" / "refs" / "v1").write_text(FIRST)  # a tag
    first_outputs, second_outputs = outputs(source), outputs(changed)
    assert not torch.equal(first_outputs, second_outputs)
    torch.testing.assert_close(outputs(sciml.zoo.load(f"hf://{REPO}")), second_outputs, rtol=0, atol=0)
    pinned = [
        sciml.zoo.from_pretrained(REPO, revision=FIRST),
        sciml.zoo.load(f"hf://{REPO}@{FIRST}"),
        sciml.zoo.load(f"hf://{REPO}", revision="v1"),
    ]
    for model in pinned:
        torch.testing.assert_close(outputs(model), first_outputs, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("repo_id", "revision"),
    [(REPO, "v9"), (REPO, "f" * 40), ("sciml-test/no-such-model", None)],
    ids=["unknown-tag", "unknown-commit", "unknown-repo"],
)
def test_what_is_not_cached_is_one_clear_error_offline(hub_cache, repo_id, revision):
    with pytest.raises(HubError) as caught:
        sciml.zoo.from_pretrained(repo_id, revision=revision)
    message = str(caught.value)
    assert isinstance(caught.value, SciMLError) and "\n" not in message
    assert message.startswith(f"hf://{repo_id} at revision {revision or 'main'!r}: not in the Hugging Face")
    assert str(hub_cache) in message and "HF_HUB_OFFLINE is set" in message


@pytest.mark.parametrize("name", FILES[:3])
def test_a_tampered_cached_file_is_refused(hub_cache, name):
    link = cached(hub_cache, name)
    expected = sha256_file(link)
    blob = link.resolve()
    blob.write_bytes(blob.read_bytes()[:-1] + b"!")
    with pytest.raises(IntegrityError) as caught:
        sciml.zoo.load(f"hf://{REPO}")
    err = caught.value
    assert err.path == str(link) and err.expected == expected and err.found == sha256_file(blob)
    assert "sciml.json" in str(err) and "refusing to load it" in str(err)


def test_a_repository_without_a_valid_hash_file_is_refused(hub_cache):
    hashes = cached(hub_cache, "sciml.json")
    listing = json.loads(hashes.read_text())
    listing["files"]["../../blobs/x"] = listing["files"]["README.md"]
    hashes.resolve().write_text(json.dumps(listing))
    with pytest.raises(DataFormatError, match=r"files\.\.\./\.\./blobs/x.*refusing a file outside"):
        sciml.zoo.load(f"hf://{REPO}")
    hashes.unlink()
    with pytest.raises(DataFormatError, match=r"sciml\.json: not a sciml model repository"):
        sciml.zoo.load(f"hf://{REPO}")


def test_a_hub_folder_loads_outside_the_cache_too(exported, source):
    model = load_snapshot(exported, "a folder")
    torch.testing.assert_close(outputs(model), outputs(source), rtol=0, atol=0)


def test_bad_hub_names_and_arguments_are_config_errors(exported):
    for call in (
        lambda: sciml.zoo.load("hf://no-organisation"),
        lambda: sciml.zoo.load(f"hf://{REPO}@"),
        lambda: sciml.zoo.load(f"hf://{REPO}@v1", revision="v2"),
        lambda: sciml.zoo.load(f"hf://{REPO}", path=exported),
        lambda: sciml.zoo.load(SOURCE, revision="main"),
        lambda: sciml.zoo.from_pretrained(SOURCE, revision="main"),
        lambda: sciml.zoo.from_pretrained("org/../etc"),
        lambda: sciml.zoo.from_pretrained(None),
        lambda: sciml.zoo.from_pretrained(REPO, revision=3),
    ):
        with pytest.raises(ConfigError):
            call()


def test_a_plain_name_is_a_zoo_entry(source):
    model = sciml.zoo.from_pretrained(SOURCE)
    assert model.verified
    torch.testing.assert_close(outputs(model), outputs(source), rtol=0, atol=0)


def test_without_huggingface_hub_the_error_names_the_extra(monkeypatch, source, tmp_path):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # as if it were not installed
    with pytest.raises(ConfigError, match=r"pip install 'sciml\[hub\]'"):
        sciml.zoo.load(f"hf://{REPO}")
    with pytest.raises(ConfigError, match=r"pip install 'sciml\[hub\]'"):
        sciml.zoo.save_pretrained(source, tmp_path / "out", push_to_hub=True, repo_id=REPO)


def test_save_pretrained_refuses_what_it_cannot_do(source, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="needs repo_id"):
        sciml.zoo.save_pretrained(source, tmp_path / "out", push_to_hub=True)
    assert not (tmp_path / "out").exists()
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a pretrained model folder; refusing to replace it"):
        sciml.zoo.save_pretrained(source, notes)
    assert (notes / "todo.txt").read_text() == "keep me"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError, match=f"to hf://{REPO}: HF_HUB_OFFLINE is set"):
        sciml.zoo.save_pretrained(source, tmp_path / "out", push_to_hub=True, repo_id=REPO)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == FILES  # written before the push


def test_metadata_of_a_model_without_test_metrics(source):
    config = copy.deepcopy(source.config)
    config["dataset"] = {"path": "data/flows.h5"}
    del config["metrics"]
    metadata = hub_metadata(config)
    assert metadata["datasets"] == ["flows"] and "model-index" not in metadata
    assert "navier-stokes" not in metadata["tags"]
    assert not render_card(config).startswith("---")
