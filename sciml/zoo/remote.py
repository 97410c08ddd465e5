"""Pretrained models on the Hugging Face Hub: ``sciml.zoo.load("hf://org/name")``, ``save_pretrained``.

A model repository holds one pretrained folder (:mod:`sciml.zoo.files`) plus its hash file::

    model.safetensors   the weights
    config.json         as in the zoo (it also records the weights' SHA-256)
    README.md           the model card, with the Hub's YAML metadata (:func:`sciml.zoo.card.render_card`)
    sciml.json          {"format_version": 1, "library": "sciml", "files": {NAME: SHA-256}}: every other
                        file written by :func:`save_pretrained`

:func:`from_pretrained` fetches the repository with ``huggingface_hub.snapshot_download`` (its cache,
``HF_HUB_CACHE``; ``revision`` a branch, tag or commit hash; ``HF_HUB_OFFLINE=1`` reads the cache only,
read when called) and checks it as a zoo entry is checked: every file ``sciml.json`` lists is copied out of
the cache while it is hashed, and a mismatch raises :class:`~sciml.zoo.files.IntegrityError` naming the
cached file and both hashes. ``config.json`` and the weights must be listed; the model is built from the
checked copies only, so what was hashed is what is loaded. Files the hash file does not list are ignored.

``huggingface_hub`` is imported only when needed (the ``sciml[hub]`` extra); a failed download (no
network, no such repository or revision, not in the cache while offline) raises one :class:`HubError`
naming the repository and the revision.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from sciml.errors import ConfigError, DataFormatError, SciMLError
from sciml.zoo.card import render_card
from sciml.zoo.files import (
    CONFIG,
    SHA256_PATTERN,
    IntegrityError,
    confined_file,
    read_json,
    read_model_config,
    replace_folder,
    sha256_file,
    verify_sha256,
    weights_file,
    write_json_atomic,
)
from sciml.zoo.pretrained import PretrainedOperator, _load_weights, build_described_model
from sciml.zoo.weights import read_weights

logger = logging.getLogger(__name__)

HASHES = "sciml.json"
HASHES_FORMAT_VERSION = 1
HUB_PREFIX = "hf://"
INSTALL_HINT = "pip install 'sciml[hub]'"
REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")


class HubError(SciMLError, OSError):
    """A model repository could not be fetched from (or pushed to) the Hugging Face Hub or its cache."""


def _huggingface_hub() -> ModuleType:
    """The ``huggingface_hub`` module, or a :class:`ConfigError` naming the extra that installs it."""
    try:
        import huggingface_hub
    except ImportError:
        raise ConfigError(
            f"the Hugging Face Hub needs the package huggingface_hub, which is not installed: {INSTALL_HINT}"
        ) from None
    return huggingface_hub


def _env_flag(name: str) -> bool:
    """Whether the environment variable ``name`` is set to a true value (``1``, ``true``, ``yes``, ``on``)."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def check_repo_id(repo_id: Any) -> str:
    """``repo_id`` if it is a Hub model id ``"org/name"``, else a :class:`ConfigError` saying so."""
    if not isinstance(repo_id, str) or not REPO_ID.fullmatch(repo_id) or ".." in repo_id:
        raise ConfigError(
            f"{str(repo_id)!r} is not a Hugging Face Hub model id: expected 'org/name' (letters, digits, "
            "'.', '_', '-'), e.g. sciml.zoo.from_pretrained('org/name') or sciml.zoo.load('hf://org/name')"
        )
    return repo_id


def parse_hub_name(name: str, revision: str | None = None) -> tuple[str, str | None]:
    """``"hf://org/name"`` or ``"hf://org/name@REVISION"`` as ``(repo_id, revision)``.

    A revision both in the name and in ``revision`` raises :class:`ConfigError` unless they agree.
    """
    if not isinstance(name, str):
        check_repo_id(name)  # raises, naming what an id looks like
    if revision is not None and (not isinstance(revision, str) or not revision.strip()):
        raise ConfigError(f"revision={revision!r}: expected a branch, a tag or a commit hash (a string)")
    repo_id, at, named_revision = name.removeprefix(HUB_PREFIX).partition("@")
    if at and not named_revision:
        raise ConfigError(f"{name!r}: nothing after '@' (expected hf://org/name@REVISION)")
    if at and revision is not None and revision != named_revision:
        raise ConfigError(f"{name!r} names revision {named_revision!r} but revision={revision!r} was passed")
    return check_repo_id(repo_id), named_revision or revision


def _download_failure(err: Exception, offline: bool, cache: str) -> str:
    """Why ``snapshot_download`` failed, in one line."""
    from huggingface_hub import errors

    if isinstance(err, errors.RevisionNotFoundError):
        return "the repository has no such revision (expected a branch, a tag or a commit hash)"
    if isinstance(err, errors.RepositoryNotFoundError):
        return "no such repository on the Hub, or it is private or gated (log in or pass token=)"
    if isinstance(err, getattr(errors, "IncompleteSnapshotError", ())):  # absent in older versions
        return f"the cached snapshot in {cache} is incomplete and the Hub cannot be reached"
    if isinstance(err, errors.LocalEntryNotFoundError):
        if offline:
            return (
                f"not in the Hugging Face cache {cache} and HF_HUB_OFFLINE is set (download it once "
                "online, or pin a revision that is cached)"
            )
        return f"the Hub cannot be reached and the Hugging Face cache {cache} does not hold it"
    first_line = (str(err).strip().splitlines() or [""])[0][:200]
    return f"{type(err).__name__}: {first_line}"


def download_snapshot(
    repo_id: str, revision: str | None = None, cache_dir: str | Path | None = None, token: str | None = None
) -> Path:
    """The folder of ``repo_id`` at ``revision`` in the Hugging Face cache, downloaded if needed.

    ``cache_dir`` defaults to ``$HF_HUB_CACHE`` (read now) or huggingface_hub's default; with
    ``HF_HUB_OFFLINE`` set (read now) only the cache is looked at. Any failure is one :class:`HubError`.
    """
    hub = _huggingface_hub()
    offline = _env_flag("HF_HUB_OFFLINE")
    cache_dir = cache_dir or os.environ.get("HF_HUB_CACHE") or None
    try:
        folder = hub.snapshot_download(
            repo_id, revision=revision, cache_dir=cache_dir, local_files_only=offline, token=token
        )
    except Exception as err:  # huggingface_hub raises its own, httpx's and OS errors: one HubError for all
        from huggingface_hub import constants

        reason = _download_failure(err, offline, str(cache_dir or constants.HF_HUB_CACHE))
        raise HubError(f"hf://{repo_id} at revision {revision or 'main'!r}: {reason}") from err
    return Path(folder)


def read_hashes(path: Path) -> dict[str, str]:
    """The ``files`` of a ``sciml.json``: file name -> SHA-256, checked for types and hash format."""
    if not path.is_file():
        raise DataFormatError(
            path, "not a sciml model repository (no hash file)", expected=f"{path.name} listing every file"
        )
    hashes = read_json(path)
    if hashes.get("format_version") != HASHES_FORMAT_VERSION:
        raise DataFormatError(
            path,
            "unsupported hash-file format version",
            key="format_version",
            expected=HASHES_FORMAT_VERSION,
            found=repr(hashes.get("format_version"))[:80],
        )
    files = hashes.get("files")
    if not isinstance(files, dict) or CONFIG not in files:
        raise DataFormatError(
            path, "no file list", key="files", expected=f"an object of file name -> SHA-256 with {CONFIG}"
        )
    for name, digest in files.items():
        if not isinstance(digest, str) or not SHA256_PATTERN.fullmatch(digest):
            raise DataFormatError(
                path, "malformed hash", key=f"files.{name}", expected="64 lowercase hex digits", found=digest
            )
    return files


def _copy_checked(source: Path, target: Path, expected: str, recorded_in: Path) -> None:
    """Copy ``source`` to ``target`` hashing it; :class:`IntegrityError` naming ``source`` on a mismatch."""
    if not source.is_file():
        raise DataFormatError(source, f"file missing (listed in {recorded_in})")
    digest = hashlib.sha256()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as src, open(target, "wb") as dst:
        while block := src.read(1 << 20):
            digest.update(block)
            dst.write(block)
    found = digest.hexdigest()
    if found != expected:
        raise IntegrityError(
            source,
            f"SHA-256 does not match the one recorded in {recorded_in}: the file was modified, truncated "
            "or replaced; refusing to load it",
            expected=expected,
            found=found,
        )


def _naming_cached_files(err: DataFormatError, copies: Path, snapshot: Path) -> DataFormatError:
    """``err`` (same type and attributes) naming the files of ``snapshot`` instead of their ``copies``."""

    def cached(text: str) -> str:
        for shown in {str(copies.resolve()), str(copies)}:
            text = text.replace(shown, str(snapshot))
        return text

    renamed = type(err)(cached(str(err)))
    renamed.path, renamed.key, renamed.expected, renamed.found = (
        cached(err.path),
        err.key,
        err.expected,
        err.found,
    )
    return renamed


def load_snapshot(
    snapshot: str | Path, source: str, device: str | torch.device = "cpu"
) -> PretrainedOperator:
    """Load a model repository's folder after checking every file against its ``sciml.json``.

    The listed files are copied to a temporary folder while hashed (they must stay inside the repository's
    cache folder, where the snapshot's links point); the model is built from those copies. ``source``
    (``hf://org/name``) names the model in the log.
    """
    snapshot = Path(snapshot)
    hashes_path = snapshot / HASHES
    listed = read_hashes(hashes_path)
    in_cache = snapshot.parent.name == "snapshots"  # huggingface_hub's layout: links to ../../blobs
    repository = (snapshot.parents[1] if in_cache else snapshot).resolve()
    with tempfile.TemporaryDirectory(prefix="sciml-hub-") as tmp:
        copies = Path(tmp)
        try:
            for name, expected in listed.items():
                target = confined_file(copies, name, hashes_path, f"files.{name}")  # no absolute, no ..
                cached = snapshot / name
                if cached.exists() and not cached.resolve().is_relative_to(repository):
                    raise DataFormatError(
                        hashes_path,
                        f"refusing a file outside the repository (it resolves to {cached.resolve()})",
                        key=f"files.{name}",
                    )
                _copy_checked(cached, target, expected, hashes_path)
            config = read_model_config(copies)
            weights = weights_file(copies, config)
            if weights.relative_to(copies.resolve()).as_posix() not in listed:
                raise DataFormatError(
                    hashes_path, "weights not listed", key="files", expected=f"an entry for {weights.name}"
                )
            verify_sha256(weights, config["weights"]["sha256"], str(copies / CONFIG))
            state = read_weights(weights, device)
            model = build_described_model(config, copies / CONFIG)
            _load_weights(model, state, weights, copies / CONFIG)
        except DataFormatError as err:
            raise _naming_cached_files(err, copies, snapshot) from None
    operator = PretrainedOperator(model, config, verified=True).to(device)
    operator.eval()
    logger.info(
        "loaded %s (%s, %s) from %s: every file matches its %s",
        source,
        operator.family,
        device,
        snapshot,
        HASHES,
    )
    return operator


def from_pretrained(
    repo_id: str,
    revision: str | None = None,
    *,
    device: str | torch.device = "cpu",
    cache_dir: str | Path | None = None,
    token: str | None = None,
) -> PretrainedOperator:
    """A pretrained model from the Hugging Face Hub (``"org/name"`` or ``"hf://org/name[@REVISION]"``).

    ``revision`` pins a branch, tag or commit hash (default ``main``). The repository comes through
    huggingface_hub's cache (``cache_dir``, default ``$HF_HUB_CACHE``; ``HF_HUB_OFFLINE=1`` uses the cache
    only) and every file is checked against its ``sciml.json`` before the weights are read
    (:func:`load_snapshot`; ``verified`` is True). A plain name without ``/`` is a local zoo entry
    (:func:`sciml.zoo.load`). Raises :class:`HubError` when the repository or revision cannot be fetched,
    :class:`~sciml.zoo.files.IntegrityError` on a hash mismatch, :class:`ConfigError` for a bad id or a
    missing huggingface_hub.
    """
    if isinstance(repo_id, str) and "/" not in repo_id:
        if revision is not None:
            raise ConfigError(
                f"{repo_id!r} is a local zoo name: revision= applies to Hub ids 'org/name' only"
            )
        return PretrainedOperator.from_pretrained(repo_id, device=device)
    repo_id, revision = parse_hub_name(repo_id, revision)
    snapshot = download_snapshot(repo_id, revision, cache_dir=cache_dir, token=token)
    return load_snapshot(snapshot, f"{HUB_PREFIX}{repo_id}@{snapshot.name}", device=device)


def _refuse_foreign_folder(folder: Path) -> None:
    """Refuse to replace an existing file or non-empty folder that is not a pretrained model folder."""
    if not folder.exists():
        return
    is_model = folder.is_dir() and ((folder / HASHES).is_file() or (folder / CONFIG).is_file())
    if not folder.is_dir() or (any(folder.iterdir()) and not is_model):
        raise ConfigError(
            f"save_pretrained: {folder} exists and is not a pretrained model folder; refusing to replace it "
            "(choose a new or empty folder)"
        )


def save_pretrained(
    model_or_entry: PretrainedOperator | str,
    folder: str | Path,
    push_to_hub: bool = False,
    repo_id: str | None = None,
    *,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str | None = None,
) -> Path:
    """Write a model as a Hub repository folder, and with ``push_to_hub`` upload it to ``repo_id``.

    ``model_or_entry`` is a :class:`PretrainedOperator` or a name :func:`from_pretrained` loads (a zoo
    entry, ``org/name``). The folder holds the safetensors weights, ``config.json``, the card
    ``README.md`` with the Hub's YAML metadata and ``sciml.json`` with the SHA-256 of each; it is assembled
    under a temporary name and renamed at the end. An existing folder is replaced only if it is a model
    folder. The upload is ``HfApi().upload_folder`` (the repository is created if needed).
    """
    if push_to_hub and repo_id is None:
        raise ConfigError("save_pretrained: push_to_hub=True needs repo_id='org/name'")
    if repo_id is not None:
        check_repo_id(repo_id)
    if isinstance(model_or_entry, str):
        model = from_pretrained(model_or_entry)
    elif isinstance(model_or_entry, PretrainedOperator):
        model = model_or_entry
    else:
        raise ConfigError(
            "save_pretrained: expected a PretrainedOperator or a model name, got "
            f"{type(model_or_entry).__name__}"
        )
    folder = Path(folder)
    _refuse_foreign_folder(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        written = model.save_pretrained(
            staging / "model", card=lambda config: render_card(config, front_matter=True, repo_id=repo_id)
        )
        files = {
            path.relative_to(written).as_posix(): sha256_file(path)
            for path in sorted(written.rglob("*"))
            if path.is_file()
        }
        hashes = {"format_version": HASHES_FORMAT_VERSION, "library": "sciml", "files": files}
        write_json_atomic(written / HASHES, hashes)
        replace_folder(written, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("wrote %s as a Hub repository folder: %s", model.name, folder)
    if push_to_hub and repo_id is not None:
        push_folder(folder, repo_id, private=private, token=token, commit_message=commit_message)
    return folder


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Upload a folder written by :func:`save_pretrained` to the model repository ``repo_id``.

    Creates the repository if needed, then one ``HfApi().upload_folder`` commit; returns the commit's URL.
    """
    hub = _huggingface_hub()
    where = f"hf://{check_repo_id(repo_id)}"
    if _env_flag("HF_HUB_OFFLINE"):
        raise HubError(f"cannot push {folder} to {where}: HF_HUB_OFFLINE is set")
    api = hub.HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            commit_message=commit_message or f"Upload {Path(folder).name} with sciml",
        )
    except Exception as err:  # as in download_snapshot: one HubError whatever huggingface_hub raises
        first_line = (str(err).strip().splitlines() or [""])[0][:200]
        raise HubError(f"cannot push {folder} to {where}: {type(err).__name__}: {first_line}") from err
    url = str(getattr(commit, "commit_url", commit))
    logger.info("pushed %s to %s: %s", folder, where, url)
    return url
