"""A SQLite WAL checkpointed on a thread of its own, so that the writer's commits do not wait.

In WAL mode a commit appends the transaction's pages to the ``-wal`` file; a checkpoint copies
them into the database file, and once all are copied the next write starts the WAL over. SQLite
runs one itself at the commit that leaves the WAL longer than ``wal_autocheckpoint`` pages
(1,000 by default), inside that commit: the writer waits for the copy and its fsync. The
worker's journal writes about a page per message (its payload), so its writer waited for a
checkpoint every two batches — about three quarters of the time the journal's commits took
(BENCHMARKS.md, issue 17, fifth part).

:class:`WalCheckpointer` runs ``PRAGMA wal_checkpoint(PASSIVE)`` on its own connection and
thread: each time the writer says it committed (:meth:`WalCheckpointer.committed`), and at least
every ``every_s``. A passive checkpoint never blocks the writer or readers, and Python's
``sqlite3`` releases the GIL while SQLite works, so the copy and the fsync overlap the writer's
own work. It starts right after a commit, so it usually copies everything before the writer's
next transaction, and the WAL starts over instead of growing. The writer keeps SQLite's own
checkpoint at a higher mark (:data:`BACKSTOP_PAGES`): should this thread fall behind, or a
long read keep the WAL from starting over, the WAL still stays bounded, as before.

Durability is the same: a commit is in the WAL (with ``synchronous=FULL``, synced there) before
the writer goes on, whoever copies it to the database file later; a crash in the middle of a
checkpoint is what SQLite's recovery is built for.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger(__name__)

BACKSTOP_PAGES = 10_000  # the writer's own automatic checkpoint (SQLite's default is 1,000)


class WalCheckpointer:
    """Checkpoints the WAL of the database at ``path`` on a daemon thread (see the module
    docstring). ``runs`` counts the checkpoints done; :meth:`close` stops the thread."""

    def __init__(self, path: str, every_s: float = 1.0) -> None:
        self.path = path
        self.every_s = every_s
        self.runs = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """The writer committed: checkpoint what it wrote, as soon as the thread gets to it."""
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join()

    def _loop(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            while not self._stop.is_set():
                self._wake.wait(self.every_s)
                self._wake.clear()
                if self._stop.is_set():
                    break
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.runs += 1
                except sqlite3.Error as e:  # the writer's backstop checkpoint still runs
                    log.warning("checkpointing %s's WAL failed: %s", self.path, e)
        finally:
            db.close()
