"""The agent's own metrics, as a small JSON status file replaced atomically.

Why a file: an edge device usually has a local supervisor or collector (systemd, a node_exporter
textfile collector fed by ``jq``, a support engineer with ``cat``) but no metrics server, and the
agent must not need the network to report that the network is down. The file is rewritten every
``interval_s`` (and at a clean stop) with :func:`os.replace`, so a reader never sees half of it.

Fields (all counters since the buffer was created unless noted)::

    {"device": "ac-000123", "ts": 1716000000.0, "connected": true,
     "next_seq": 4712, "buffered_messages": 3, "buffered_bytes": 1820,
     "dropped_messages": 0, "dropped_readings": 0,
     "published": 120, "acknowledged": 118,          # this run
     "source_errors": 0, "bad_values": 0}            # this run

The same drop counter also goes out in every birth (``dropped_readings``), and the agent logs a
warning each time it grows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path


class StatusFile:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, status: Mapping[str, object]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(dict(status), sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)


def read_status(path: str | Path) -> dict[str, object]:
    """The last status written to ``path`` (for tests and tools)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
