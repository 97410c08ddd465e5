"""Helpers shared by the readers: axis layouts, per-axis options, box lengths and true/false flags.

Every reader that needs one of these imports it from here (never from a sibling reader), so each concept
has one definition:

* :class:`Layout`, :func:`parse_layout`, :func:`select_frames`: arrays whose axes are named by letters
  among ``n t c x y z`` (``.npy`` files, netCDF variables);
* :func:`per_axis`, :func:`per_axis_flags`, :func:`per_axis_floats`: an option given once or once per
  spatial axis;
* :func:`box_length`: the length of the box spanned by 1D coordinates;
* :func:`parse_flag`: a true/false value stored in a file (an attribute) or passed as an option.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from sciml.datasets.base import check_read_size, selection_shape
from sciml.errors import DataFormatError

Converted = TypeVar("Converted")

SPATIAL_LETTERS = ("x", "y", "z")
LAYOUT_LETTERS = ("n", "t", "c", *SPATIAL_LETTERS)

#: Spellings read as true / false (compared after stripping and lower-casing text).
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "periodic"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "none", "wall", "open"})
FLAG_SPELLINGS = "a bool, 0/1, or one of true/false, t/f, yes/no, y/n, periodic/wall/open/none"


# ----------------------------------------------------------------------------------------------------------
# Axis layouts
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """A parsed axis layout: the letter of each axis of an array, in array order."""

    letters: str

    @property
    def spatial(self) -> tuple[str, ...]:
        """The spatial letters present, in ``x, y, z`` order."""
        return tuple(a for a in SPATIAL_LETTERS if a in self.letters)

    def axis(self, letter: str) -> int | None:
        """Position of ``letter`` in the array, or ``None`` when the layout lacks it."""
        k = self.letters.find(letter)
        return None if k < 0 else k

    def size(self, shape: Sequence[int], letter: str) -> int:
        """Length of the axis ``letter`` in an array of ``shape`` (1 when the layout lacks it)."""
        k = self.axis(letter)
        return 1 if k is None else int(shape[k])


def parse_layout(layout: str, path: str, option: str = "layout") -> Layout:
    """Check a layout string (letters among ``n t c x y z``, no repeats, 1-3 spatial letters)."""
    if not isinstance(layout, str):
        raise DataFormatError(path, f"option {option}= must be a string", found=type(layout).__name__)
    letters = layout.strip().lower()
    bad = sorted({a for a in letters if a not in LAYOUT_LETTERS})
    n_spatial = sum(a in SPATIAL_LETTERS for a in letters)
    if bad or len(set(letters)) != len(letters) or not 1 <= n_spatial <= 3:
        raise DataFormatError(
            path,
            f"invalid option {option}=",
            expected="distinct letters among n, t, c, x, y, z with 1 to 3 of x, y, z (e.g. 'ntxyc')",
            found=repr(layout),
        )
    return Layout(letters)


def select_frames(
    array: Any, layout: Layout, index: int | None, times: slice, *, path: str, key: str | None = None
) -> np.ndarray:
    """Frames ``times`` of sample ``index`` of an array in ``layout``, as a fresh ``[T_sel, C, *grid]``.

    ``array`` is anything indexable like a NumPy array (a memory map, an h5py or netCDF variable) with
    ``shape`` and ``dtype``; only the selected block is read, after its size was checked against the read
    limit (a :class:`DataFormatError` naming ``path`` and ``key`` otherwise).
    """
    selection: list[Any] = []
    kept: list[str] = []
    for letter in layout.letters:
        if letter == "n":
            selection.append(0 if index is None else index)
        elif letter == "t":
            selection.append(times)
            kept.append(letter)
        else:
            selection.append(slice(None))
            kept.append(letter)
    shape = selection_shape(array.shape, tuple(selection))
    check_read_size(path, shape, np.dtype(array.dtype).itemsize, key=key, what="reading this trajectory")
    block = np.asarray(array[tuple(selection)])
    if "t" not in kept:  # a missing time axis has length 1: apply the slice to it
        block = block[None][times]
        kept.insert(0, "t")
    if "c" not in kept:
        block = block[..., None]
        kept.append("c")
    order = [kept.index(a) for a in ("t", "c", *layout.spatial)]
    return np.array(block.transpose(order), copy=True)


# ----------------------------------------------------------------------------------------------------------
# True/false flags
# ----------------------------------------------------------------------------------------------------------
def parse_flag(value: Any, *, path: str, key: str, default: bool | None = None) -> bool:
    """A true/false flag read from a file attribute or an option, with one meaning for every reader.

    Recognized: ``bool`` (and ``numpy.bool_``), the numbers 0 and 1, and the texts (``str`` or ``bytes``
    from an HDF5/netCDF attribute, any case, surrounding blanks ignored) in :data:`TRUE_WORDS` and
    :data:`FALSE_WORDS` (``"periodic"`` is true, ``"wall"``/``"open"`` false, so a boundary type reads as a
    periodicity flag). A one-element array is read as its element.

    Args:
        value: the stored value; ``None`` means the flag is absent.
        path: the file, for the error message.
        key: where the value sits (e.g. ``"t0_fields/u.attrs['time_varying']"``), for the error message.
        default: the value of an absent flag, chosen by the reader for its format; ``None`` makes an absent
            flag an error.

    Raises:
        DataFormatError: the value is none of the spellings above (e.g. ``"maybe"``, ``2``, ``[1, 0]``), or
            the flag is absent and there is no default. An unknown value never silently reads as either.
    """
    if value is None:
        if default is None:
            raise DataFormatError(path, "missing true/false flag", key=key, expected=FLAG_SPELLINGS)
        return default
    item = value
    if isinstance(item, np.ndarray) and item.size == 1:
        item = item.reshape(()).item()
    elif isinstance(item, np.generic):
        item = item.item()
    if isinstance(item, bytes):
        item = item.decode("utf-8", errors="replace")
    if isinstance(item, bool):
        return item
    if isinstance(item, str):
        text = item.strip().lower()
        if text in TRUE_WORDS:
            return True
        if text in FALSE_WORDS:
            return False
    elif isinstance(item, int | float) and item in (0, 1):
        return bool(item)
    raise DataFormatError(
        path, "not a recognized true/false value", key=key, expected=FLAG_SPELLINGS, found=repr(value)
    )


def attribute_key(owner: str, name: str) -> str:
    """How an error names attribute ``name`` of the object ``owner`` (``""``: the file's own attributes)."""
    return f"{owner}.attrs[{name!r}]" if owner else f"attrs[{name!r}]"


# ----------------------------------------------------------------------------------------------------------
# Per-axis options and box lengths
# ----------------------------------------------------------------------------------------------------------
def per_axis(
    value: Any, n: int, *, option: str, path: str, convert: Callable[[Any], Converted]
) -> tuple[Converted, ...]:
    """Broadcast an option given once (a scalar) or once per axis (a sequence) to ``n`` axes.

    ``convert`` turns one given value into the stored one; its ``ValueError``/``TypeError`` becomes a
    :class:`DataFormatError` naming the option.

    Raises:
        DataFormatError: a sequence of the wrong length, or a value ``convert`` refuses.
    """
    scalar = isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        scalar, value = True, value.item()
    given = [value] if scalar else list(value)
    if not scalar and len(given) != n:
        raise DataFormatError(path, f"option {option}= has the wrong length", expected=n, found=len(given))
    try:
        values = tuple(convert(v) for v in given)
    except (ValueError, TypeError) as err:
        raise DataFormatError(path, f"invalid option {option}=", found=repr(value)) from err
    return values * n if scalar else values


def per_axis_flags(value: Any, n: int, *, option: str, path: str) -> tuple[bool, ...]:
    """A true/false option (e.g. ``periodic=``) given once or once per axis, read by :func:`parse_flag`."""

    def flag(v: Any) -> bool:
        return parse_flag(v, path=path, key=f"option {option}=")

    return per_axis(value, n, option=option, path=path, convert=flag)


def per_axis_floats(value: Any, n: int, *, option: str, path: str) -> tuple[float, ...]:
    """A numeric option (e.g. ``domain_lengths=``) given once or once per axis, as floats."""
    return per_axis(value, n, option=option, path=path, convert=float)


def box_length(coord: Any, *, periodic: bool, cell_centred: bool = False) -> float:
    """Length of the box spanned by the 1D coordinates ``coord`` (uniformly spaced).

    On a periodic axis that is the period ``n * dx``, and so it is when the points are cell centres (the
    ``n`` cells cover the box); otherwise (nodes including both ends) it is the span
    ``coord[-1] - coord[0]``. NaN for fewer than two points (no spacing to go by).
    """
    c = np.asarray(coord, dtype=np.float64).reshape(-1)
    if c.size < 2:
        return float("nan")
    if periodic or cell_centred:
        return float(c.size * (c[-1] - c[0]) / (c.size - 1))
    return float(c[-1] - c[0])
