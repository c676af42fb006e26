"""The journal's WAL checkpointed on a thread of its own (cloud/store/wal.py): the pages reach
the database file without the writer's commits copying them, the WAL stays bounded, and
nothing committed is lost across a close and reopen."""

from __future__ import annotations

import os
import time
from pathlib import Path

from cloud.store.journal import Journal
from cloud.store.wal import BACKSTOP_PAGES

BODY = os.urandom(3500)  # about a page, as a 60-row block is


def _write(journal: Journal, first: int, n: int) -> None:
    journal.add_messages(
        (f"d{i % 50}", i, "telemetry", float(i), float(i), 0.0, BODY)
        for i in range(first, first + n)
    )
    journal.commit()


def _until(condition, timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_the_thread_copies_the_wal_into_the_database_and_the_wal_starts_over(tmp_path):
    path = tmp_path / "journal.db"
    wal = Path(f"{path}-wal")
    journal = Journal(path, checkpoint_thread=True)
    # the writer's own checkpoint only as a backstop: its commits below never reach it
    assert journal._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == BACKSTOP_PAGES
    largest_wal = 0
    for k in range(20):  # 4,000 pages written in all, 200 a commit
        _write(journal, k * 200, 200)
        assert _until(lambda k=k: journal._checkpointer.runs > k)
        largest_wal = max(largest_wal, wal.stat().st_size)
    written = 4000 * len(BODY)
    # the pages are in the database file (a writer left alone keeps them all in its WAL) ...
    assert _until(lambda: path.stat().st_size > written)
    # ... and the WAL started over rather than holding every page written
    assert largest_wal < written / 4
    journal.close()
    assert not journal._checkpointer._thread.is_alive()
    again = Journal(path)
    assert again.count("messages") == 4000
    again.close()


def test_a_journal_without_the_thread_keeps_sqlites_own_checkpoints(tmp_path):
    journal = Journal(tmp_path / "journal.db")
    assert journal._checkpointer is None
    assert journal._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    memory = Journal(":memory:", checkpoint_thread=True)
    assert memory._checkpointer is None  # nothing to checkpoint
    _write(memory, 0, 10)
    assert memory.count("messages") == 10
