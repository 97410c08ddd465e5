"""When progress bars are shown: on a terminal only, unless ``$SCIML_PROGRESS`` says otherwise.

Every tqdm bar of the package takes ``disable=progress_disable(allowed)``. By default a bar is drawn only
when its output (stderr) is a terminal, so log files and pipes get no carriage-return lines; the
environment variable ``SCIML_PROGRESS`` overrides this for every bar a caller allows:

- ``always`` (or ``1``, ``true``, ``on``): draw bars even into a file or a pipe;
- ``never`` (or ``0``, ``false``, ``off``): draw none, even on a terminal;
- ``auto`` or unset: on a terminal only.

A bar its caller turned off (``progress=False``, ``train.progress: false``) stays off.
"""

from __future__ import annotations

import os

from sciml.errors import ConfigError

PROGRESS_ENV = "SCIML_PROGRESS"
"""The environment variable that forces progress bars on (``always``) or off (``never``)."""

_FORCED: dict[str, bool | None] = {
    "always": False,
    "1": False,
    "true": False,
    "on": False,
    "never": True,
    "0": True,
    "false": True,
    "off": True,
    "auto": None,
    "": None,
}
"""A spelling of ``$SCIML_PROGRESS`` -> tqdm's ``disable`` (None: off unless stderr is a terminal)."""


def progress_disable(allowed: bool = True) -> bool | None:
    """tqdm's ``disable=`` for a bar its caller ``allowed``: ``True`` (off), ``False`` (forced on) or
    ``None`` (tqdm draws it only when its output is a terminal).

    Raises :class:`ConfigError` when ``$SCIML_PROGRESS`` holds an unknown value.
    """
    if not allowed:
        return True
    value = os.environ.get(PROGRESS_ENV, "").strip()
    if value.lower() not in _FORCED:
        raise ConfigError(
            f"environment variable {PROGRESS_ENV}={value!r} is not a progress setting; "
            f"expected always, never or auto"
        )
    return _FORCED[value.lower()]
