"""Small per-device detector state: ``__slots__``, shared configuration, a checked pickle format.

A worker keeps the detectors of every device it tracks (100,000 and more) in memory, so their
per-object overhead is what limits the fleet a worker can hold. A :class:`Compact`
detector part declares ``__slots__`` (no per-instance ``__dict__``) and names its constructor
arguments in ``_config``. Pickled, its state is a tagged tuple of its slot values; restored, the
configuration values are replaced by one shared copy (:func:`shared`: every device's detectors
point at the same ``3600.0`` object instead of each holding its own; so are the marker floats NaN,
±inf and 0.0), and numpy arrays are copied into arrays that own their data (an unpickled array
otherwise keeps the pickle's bytes alive).

A checkpoint in any other shape (one written before this format) is refused with an error
instead of being restored half-right.
"""

from __future__ import annotations

import math
import struct
from typing import Any, ClassVar

import numpy as np

STATE_FORMAT = "qloop-detector-state-4"

_SHARED: dict[tuple[type, Any], Any] = {}


def shared(value: Any) -> Any:
    """One shared copy of an immutable configuration value (the value itself if unhashable).

    Floats are keyed by their bits, so ``-0.0`` and ``0.0`` stay apart and NaN finds itself.
    Only configuration and a few special floats go through here: their distinct values are few,
    so the table stays small.
    """
    try:
        key = (type(value), struct.pack("<d", value) if type(value) is float else value)
        return _SHARED.setdefault(key, value)
    except TypeError:  # unhashable (a list given as configuration): keep the device's own copy
        return value


_SLOTS: dict[type, tuple[str, ...]] = {}


def _all_slots(cls: type) -> tuple[str, ...]:
    """The slot names of ``cls`` and its bases, base classes first (the pickled order)."""
    names = _SLOTS.get(cls)
    if names is None:
        found: list[str] = []
        for c in reversed(cls.__mro__):
            slots = c.__dict__.get("__slots__", ())
            found.extend((slots,) if isinstance(slots, str) else slots)
        names = _SLOTS[cls] = tuple(found)
    return names


class Compact:
    """Mixin: pickle the slots as a tagged tuple; share configuration and own arrays on restore."""

    __slots__ = ()
    _config: ClassVar[frozenset[str]] = frozenset()

    def __getstate__(self) -> tuple[str, tuple[Any, ...], dict[str, Any] | None]:
        # a subclass without __slots__ of its own keeps its extra attributes in a __dict__
        extra = getattr(self, "__dict__", None)
        return STATE_FORMAT, tuple(getattr(self, s) for s in _all_slots(type(self))), extra

    def __setstate__(self, state: object) -> None:
        names = _all_slots(type(self))
        if not (
            isinstance(state, tuple)
            and len(state) == 3
            and state[0] == STATE_FORMAT
            and isinstance(state[1], tuple)
            and len(state[1]) == len(names)
        ):
            raise ValueError(
                f"{type(self).__name__}: checkpoint is not in format {STATE_FORMAT!r} "
                "(written by an older or newer qloop?): cannot restore it"
            )
        config = self._config
        for name, value in zip(names, state[1], strict=True):
            if name in config:
                value = shared(value)
            elif isinstance(value, np.ndarray):
                value = value.copy()
            elif type(value) is float and (value == 0.0 or not math.isfinite(value)):
                value = shared(value)  # "nothing yet" markers (NaN, ±inf, 0.0): one copy each
            object.__setattr__(self, name, value)
        if state[2]:
            self.__dict__.update(state[2])
