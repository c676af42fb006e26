"""The layering of the tree, checked over its import graph: every import points down.

``LAYERS`` is the architecture in one table: a package (or module) and the packages it may
import besides itself. A module belongs to the longest entry that prefixes its name. Every
``import`` and ``from … import`` counts, wherever it stands (inside functions and
``TYPE_CHECKING`` blocks too): a lazy import is still a dependency. The tools
(``evaluation``, ``benchmarks``) may import anything; nothing shipped may import them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

_CLOUD_BASE = ("contract", "cloud.anomaly", "cloud.store")
LAYERS: dict[str, tuple[str, ...]] = {
    # the shared contract: topics, codec, fault vocabulary, clock, the MQTT link
    "contract": (),
    "edge_agent": ("contract",),
    "simulators": ("contract", "edge_agent"),
    "cloud": ("contract",),
    "cloud.anomaly": ("contract",),
    "cloud.feedback": ("contract",),
    "cloud.store": ("contract", "cloud.anomaly"),
    "cloud.ingest": _CLOUD_BASE,
    "cloud.ticketing": (*_CLOUD_BASE, "cloud.feedback"),
    "cloud.ticketing.api": (*_CLOUD_BASE, "cloud.feedback", "cloud.ticketing"),
    "cloud.ticketing.web": (
        *_CLOUD_BASE,
        "cloud.feedback",
        "cloud.ticketing",
        "cloud.ticketing.api",
    ),
    "cloud.ticketing.app": (
        *_CLOUD_BASE,
        "cloud.feedback",
        "cloud.ticketing",
        "cloud.ticketing.api",
        "cloud.ticketing.web",
    ),
    "cloud.worker_settings": ("contract", "cloud.ticketing"),
    "cloud.worker": (
        *_CLOUD_BASE,
        "cloud.feedback",
        "cloud.ingest",
        "cloud.ticketing",
        "cloud.worker_settings",
    ),
    # the application: the qloop command, the demo, the broker starter, settings
    "qloop": ("contract", "edge_agent", "simulators", "cloud"),
    # tools, not shipped: anything
    "evaluation": ("contract", "edge_agent", "simulators", "cloud", "qloop"),
    "benchmarks": ("contract", "edge_agent", "simulators", "cloud", "qloop", "evaluation"),
}
PACKAGES = ("contract", "edge_agent", "simulators", "cloud", "qloop", "evaluation", "benchmarks")
# third-party libraries that one module alone may import (STYLE.md: paho behind one module)
ONLY_IN = {"paho": ("contract.mqtt", "benchmarks")}


def _layer(module: str, layers: Mapping[str, tuple[str, ...]]) -> str | None:
    best = None
    for name in layers:
        if (module == name or module.startswith(name + ".")) and (
            best is None or len(name) > len(best)
        ):
            best = name
    return best


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _grants(grant: str, own: str, dest: str) -> bool:
    """Whether allowing ``grant`` lets layer ``own`` import layer ``dest``: a grant covers the
    layers below it, except for a layer that sits below it itself (``cloud.ticketing.api`` may
    import ``cloud.ticketing``, not its sibling ``cloud.ticketing.web``)."""
    if dest == grant:
        return True
    return _within(dest, (grant,)) and not _within(own, (grant,))


def _imports(path: Path, module: str) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing package
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(filter(None, [*parts, base]))
            yield node.lineno, base
            for alias in node.names:  # ``from cloud import worker`` names a module
                yield node.lineno, f"{base}.{alias.name}"


def violations(
    root: Path,
    packages: tuple[str, ...] = PACKAGES,
    layers: Mapping[str, tuple[str, ...]] = LAYERS,
    only_in: Mapping[str, tuple[str, ...]] = ONLY_IN,
) -> list[str]:
    """Every import under ``root``'s ``packages`` that the layer table does not allow."""
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).with_suffix("")
            module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
            own = _layer(module, layers)
            if own is None:
                found.append(f"{path.relative_to(root)}: module {module} is in no layer")
                continue
            allowed = (own, *layers[own])
            for line, target in _imports(path, module):
                top = target.partition(".")[0]
                if top in only_in and not _within(module, only_in[top]):
                    found.append(f"{path.relative_to(root)}:{line}: {module} imports {target}")
                if top not in packages:
                    continue
                dest = _layer(target, layers)
                if dest is None or _within(module, (target,)):  # its own ancestor package
                    continue
                if any(_grants(grant, own, dest) for grant in allowed):
                    continue
                found.append(
                    f"{path.relative_to(root)}:{line}: {module} ({own}) imports {target} ({dest})"
                )
    return found


def test_every_import_points_down():
    assert violations(ROOT) == []


def test_an_upward_import_is_caught(tmp_path):
    """The check fails on a lower layer importing a higher one, lazily or not."""
    (tmp_path / "contract").mkdir()
    (tmp_path / "contract" / "__init__.py").write_text("")
    (tmp_path / "contract" / "clock.py").write_text("def f():\n    from cloud.worker import W\n")
    (tmp_path / "cloud").mkdir()
    (tmp_path / "cloud" / "__init__.py").write_text("")
    (tmp_path / "cloud" / "worker.py").write_text("from contract import clock\nW = 1\n")
    (tmp_path / "cloud" / "anomaly").mkdir()
    (tmp_path / "cloud" / "anomaly" / "__init__.py").write_text("")
    (tmp_path / "cloud" / "anomaly" / "x.py").write_text(
        "from ..ticketing import service\nimport paho.mqtt.client\n"
    )
    (tmp_path / "cloud" / "ticketing" / "api").mkdir(parents=True)
    (tmp_path / "cloud" / "ticketing" / "api" / "routes.py").write_text(
        "from cloud.ticketing import views\nfrom cloud.ticketing.web import pages\n"
    )
    found = violations(tmp_path, packages=("contract", "cloud"))
    assert sorted(found) == [
        "cloud/anomaly/x.py:1: cloud.anomaly.x (cloud.anomaly) imports cloud.ticketing"
        " (cloud.ticketing)",
        "cloud/anomaly/x.py:1: cloud.anomaly.x (cloud.anomaly) imports"
        " cloud.ticketing.service (cloud.ticketing)",
        "cloud/anomaly/x.py:2: cloud.anomaly.x imports paho.mqtt.client",
        "cloud/ticketing/api/routes.py:2: cloud.ticketing.api.routes (cloud.ticketing.api)"
        " imports cloud.ticketing.web (cloud.ticketing.web)",
        "cloud/ticketing/api/routes.py:2: cloud.ticketing.api.routes (cloud.ticketing.api)"
        " imports cloud.ticketing.web.pages (cloud.ticketing.web)",
        "contract/clock.py:2: contract.clock (contract) imports cloud.worker (cloud.worker)",
        "contract/clock.py:2: contract.clock (contract) imports cloud.worker.W (cloud.worker)",
    ]


@pytest.mark.parametrize("package", ["evaluation", "benchmarks"])
def test_tools_are_not_shipped(package):
    text = (ROOT / "pyproject.toml").read_text()
    include = next(line for line in text.splitlines() if line.startswith("include = "))
    assert package not in include
