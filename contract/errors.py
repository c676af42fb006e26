"""The base of qloop's own errors.

Every error qloop raises on purpose derives from :class:`QloopError`, so a caller (the command
line above all) can tell "qloop refused this, and says why" from a bug. Most also derive from the
built-in class whose meaning they carry (``ValueError`` for bad input, ``LookupError`` for
something missing), so code that catches those keeps working.
"""

from __future__ import annotations


class QloopError(Exception):
    """Something qloop refused or could not do, with a message a person can act on."""
