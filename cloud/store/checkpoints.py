"""Where the worker checkpoints its detectors' per-device state.

By default in its own journal (:class:`~cloud.store.journal.Journal`, committed with the messages
it acknowledges): a restarted worker resumes every device it knew without relearning. A journal
is one worker's file, though; when partitions move between workers on different hosts (a worker
is replaced, the fleet is split anew), the new owner of a device must find that device's state
somewhere they share. :class:`SqlCheckpoints` keeps it in any SQLAlchemy database the workers
share (``--checkpoint-db``: e.g. the ticket database, or a PostgreSQL of their own), in one table
``detector_checkpoints`` that it creates if missing. The worker then restores a device when it
first hears of it — at start for the devices in its journal, and on the device's birth (births
are retained, so a worker given new partitions receives them before their telemetry).

A state is the detector bank's own pickle of the device's detectors; only workers write it.
Checkpoints are per device, not per partition, so any split of the fleet can restore them. A
worker writes them between micro-batches, after the findings of the batches before were handed
to the ticket database, so a checkpoint is never ahead of it; at a restart the worker feeds its
detectors what its journal holds past each device's checkpoint (``cloud/ingest/catch_up.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from sqlalchemy import Column, Float, Insert, LargeBinary, MetaData, String, Table, select

from cloud.store.sql import connect, for_writing

_CHUNK = 500  # devices per query when many are read at once (bound parameters stay few)
_metadata = MetaData()
CHECKPOINTS = Table(
    "detector_checkpoints",
    _metadata,
    Column("device", String(64), primary_key=True),  # device ids are at most 64 characters
    Column("state", LargeBinary, nullable=False),
    Column("updated", Float, nullable=False),  # wall-clock Unix seconds of the save
    Column("worker", String(200), nullable=False),  # the MQTT client id of the saving worker
)


class CheckpointStore(Protocol):
    def checkpoint(self, device: str) -> bytes | None: ...

    def checkpoints(self, devices: Iterable[str]) -> dict[str, bytes]: ...

    def save_checkpoints(self, states: Iterable[tuple[str, bytes]], updated: float) -> None: ...


class SqlCheckpoints:
    """Checkpoints in a database shared by the workers."""

    def __init__(self, url: str, worker: str) -> None:
        self.worker = worker
        self._engine = connect(url)
        _metadata.create_all(for_writing(self._engine), checkfirst=True)
        self._upsert = _upsert(self._engine.dialect.name)

    def checkpoint(self, device: str) -> bytes | None:
        with self._engine.connect() as conn:
            return conn.execute(
                select(CHECKPOINTS.c.state).where(CHECKPOINTS.c.device == device)
            ).scalar_one_or_none()

    def checkpoints(self, devices: Iterable[str]) -> dict[str, bytes]:
        """The saved states of ``devices`` (those that have one), a few queries for them all."""
        wanted, out = list(devices), {}
        with self._engine.connect() as conn:
            for k in range(0, len(wanted), _CHUNK):
                rows = conn.execute(
                    select(CHECKPOINTS.c.device, CHECKPOINTS.c.state).where(
                        CHECKPOINTS.c.device.in_(wanted[k : k + _CHUNK])
                    )
                )
                out.update((d, s) for d, s in rows)
        return out

    def save_checkpoints(self, states: Iterable[tuple[str, bytes]], updated: float) -> None:
        """Replace the devices' states, all in one transaction."""
        rows = [
            {"device": d, "state": s, "updated": updated, "worker": self.worker} for d, s in states
        ]
        if not rows:
            return
        with for_writing(self._engine).begin() as conn:
            conn.execute(self._upsert, rows)

    def close(self) -> None:
        self._engine.dispose()


def _upsert(dialect: str) -> Insert:
    """INSERT … ON CONFLICT (device) DO UPDATE, in the syntax SQLite and PostgreSQL share."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise ValueError(f"checkpoints need SQLite or PostgreSQL, not {dialect}")
    stmt = insert(CHECKPOINTS)
    return stmt.on_conflict_do_update(
        index_elements=[CHECKPOINTS.c.device],
        set_={c: stmt.excluded[c] for c in ("state", "updated", "worker")},
    )
