"""Strict dataclass configs read from YAML: unknown keys are errors that name the nearest valid key.

Used by dataset recipes and by run configs (``python -m sciml.train``); YAML is read with
``yaml.safe_load`` only. A config file is a path or the name of a shipped one (see
:func:`sciml.assets.resolve_config`).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from sciml.assets import CONFIG_FOLDERS, resolve_config
from sciml.errors import ConfigError

T = TypeVar("T")


def load_yaml(path: str | Path, folders: Sequence[str] = CONFIG_FOLDERS) -> dict[str, Any]:
    """Read a YAML mapping with ``yaml.safe_load``; a ConfigError names the file on any problem.

    ``path`` is a file, or the name of a shipped file of ``folders`` (``quickstart``, ``ns_quick``,
    ``configs/quickstart.yaml`` from any working directory); a missing one names the nearest shipped names.
    """
    p = resolve_config(path, folders)
    try:
        data = yaml.safe_load(p.read_text())
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{p}: cannot read the config file ({type(err).__name__}: {err})") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{p}: not valid YAML ({yaml_problem(err)})") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of sections at the top, found {type(data).__name__}")
    return data


def yaml_problem(err: yaml.YAMLError) -> str:
    """One line saying where and what PyYAML found wrong (its own message spans several lines)."""
    if not isinstance(err, yaml.MarkedYAMLError):
        return " ".join(str(err).split())
    problem = err.problem or err.context or "invalid syntax"
    mark = err.problem_mark or err.context_mark
    text = f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark is not None else problem
    if err.context and err.problem and err.context_mark is not None:
        text += f" ({err.context} at line {err.context_mark.line + 1}, column {err.context_mark.column + 1})"
    return " ".join(text.split())


def nearest(name: str, valid: typing.Iterable[str]) -> str:
    """A hint naming the valid key closest to ``name`` (or listing the valid keys)."""
    valid = list(valid)
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"valid keys: {', '.join(sorted(valid))}"


def from_dict(cls: type[T], data: Mapping[str, Any] | None, where: str) -> T:
    """Build dataclass ``cls`` from a mapping, recursively and strictly.

    Unknown keys raise :class:`ConfigError` naming the nearest valid key; values are checked against the
    field types (ints are accepted where floats are expected, and nested dataclasses are built from
    mappings). ``where`` names the place in the file (e.g. ``"recipe.yaml: solver"``) for the message.
    """
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping, found {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(f"{where}: unknown key {key!r}; {nearest(str(key), fields)}")
        kwargs[key] = _coerce(value, hints[key], f"{where}.{key}")
    missing = [
        name
        for name, f in fields.items()
        if name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{where}: missing required key(s) {', '.join(missing)}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{where}: {err}") from err


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against a type annotation, converting where YAML is looser (int -> float)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {args}")
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value, where)
    if origin is typing.Literal:
        return check_choice(value, args, where)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, found {value!r}")
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, found {value!r}")
        return dict(value)
    if annotation is float:
        if isinstance(value, str):  # YAML 1.1 reads 3e-4 (no dot) as text
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, found {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, found {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, found {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, found {value!r}")
        return value
    return value


def check_choice(value: Any, choices: typing.Sequence[Any], where: str) -> Any:
    """Return ``value`` if it is one of ``choices`` (the values of a ``Literal``), else raise a
    :class:`ConfigError` naming the key, the value, the allowed values and the nearest one."""
    if any(type(value) is type(choice) and value == choice for choice in choices):
        return value
    allowed = [str(choice) for choice in choices]
    by_case_folded = {name.casefold(): name for name in allowed}
    close = difflib.get_close_matches(str(value).casefold(), list(by_case_folded), n=1, cutoff=0.5)
    hint = f"; did you mean {by_case_folded[close[0]]!r}?" if close else ""
    raise ConfigError(f"{where}: {value!r} is not one of {', '.join(allowed)}{hint}")


def check_choices(config: Any, where: str) -> None:
    """Check every ``Literal``-annotated field of dataclass ``config`` (for ``__post_init__``, so that a
    config built in Python is checked like one read by :func:`from_dict`); ``where`` names the section."""
    hints = _type_hints(type(config))
    for f in dataclasses.fields(config):
        if _is_choice(hints[f.name]):
            _coerce(getattr(config, f.name), hints[f.name], f"{where}.{f.name}")


_TYPE_HINTS: dict[type, dict[str, Any]] = {}


def _type_hints(cls: type) -> dict[str, Any]:
    """``typing.get_type_hints(cls)``, resolved once per class."""
    if cls not in _TYPE_HINTS:
        _TYPE_HINTS[cls] = typing.get_type_hints(cls)
    return _TYPE_HINTS[cls]


def _is_choice(annotation: Any) -> bool:
    """Whether ``annotation`` is a ``Literal`` (or an optional one)."""
    if typing.get_origin(annotation) is typing.Literal:
        return True
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and any(
        typing.get_origin(a) is typing.Literal for a in typing.get_args(annotation)
    )


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass config as plain dicts/lists (what YAML and JSON hold)."""
    return dataclasses.asdict(obj)
