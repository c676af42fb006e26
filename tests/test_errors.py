"""One base for qloop's own errors: every exception class the shipped packages define derives
from :class:`contract.errors.QloopError`, so a caller can tell a refusal with a reason from a
bug (the command line prints the first in one line)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from contract.errors import QloopError

PACKAGES = ("contract", "edge_agent", "simulators", "cloud", "qloop")


def _modules():
    for name in PACKAGES:
        package = importlib.import_module(name)
        yield package.__name__
        for info in pkgutil.walk_packages(package.__path__, prefix=name + "."):
            if ".migrations" not in info.name and not info.name.endswith("__main__"):
                yield info.name


def _own_exceptions():
    for module_name in _modules():
        module = importlib.import_module(module_name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module_name and issubclass(cls, BaseException):
                yield cls


EXCEPTIONS = sorted(set(_own_exceptions()), key=lambda c: f"{c.__module__}.{c.__qualname__}")


def test_there_are_errors_to_check():
    assert len(EXCEPTIONS) >= 10


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_derives_from_qloop_error(cls):
    assert issubclass(cls, QloopError)
