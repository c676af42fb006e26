"""The developer tools behind ``qloop eval`` and ``qloop bench``.

Evaluation (``evaluation/``) and the benchmarks (``benchmarks/``) may import anything — the
simulator, the whole cloud — so they sit above every shipped layer and are not part of the
wheel. They run from a source checkout: the packages beside this one. An installed wheel without
them answers the command with a one-line error instead of a traceback.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

from contract.errors import QloopError

CHECKOUT = Path(__file__).resolve().parent.parent


class ToolMissing(QloopError):
    """A developer tool was asked for where only the shipped packages are installed."""


def import_tool(module: str, command: str) -> ModuleType:
    """``module`` (e.g. ``evaluation.fleet``) from the installed path or the source checkout."""
    package = module.partition(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != package:
            raise
    if not (CHECKOUT / package / "__init__.py").is_file():
        raise ToolMissing(
            f"qloop {command} runs from a source checkout (it needs {package}/, which is not"
            " installed with qloop)"
        )
    sys.path.append(str(CHECKOUT))
    return importlib.import_module(module)
