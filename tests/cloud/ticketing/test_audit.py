"""A history nobody can quietly rewrite: every ticket's history is a hash chain that
``qloop audit verify`` walks, naming the first entry changed, deleted or inserted outside qloop;
``qloop export`` archives tickets with their history and fixes (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.ticketing.audit import AuditReport, export, verify
from cloud.ticketing.chain import GENESIS, Reason
from cloud.ticketing.complaints import FeedbackIn
from cloud.ticketing.db import for_writing
from cloud.ticketing.history import HistoryKind, write_history
from cloud.ticketing.models import Ticket, TicketHistory
from cloud.ticketing.service import TicketService
from qloop import cli
from tests import ticketing_support as support
from tests.ticketing_support import (
    HOUR,
    NOW_TS,
    Clock,
    dev_id,
    finding,
    open_tickets,
    register_fleet,
    run_together,
)

clock, db_url, engine, svc = support.clock, support.db_url, support.engine, support.svc  # fixtures

FIX_TS = NOW_TS + 2 * HOUR


def outbreak(svc: TicketService, batch: int) -> str:
    """Batch ``batch`` loses cooling in 8 of its 20 units: its batch ticket's id."""
    for u in range(8):
        svc.record_finding(finding(dev_id(batch, u), ts=NOW_TS + u))
    (ticket,) = open_tickets(svc, scope="batch", batch=f"B{batch}")
    return ticket.id


@pytest.fixture
def tickets(svc: TicketService, clock: Clock) -> dict[str, str]:
    """A batch ticket worked on, fixed and verified, with a customer's complaint joined to it
    (opened on 2026-11-22), and a second batch ticket opened three days later."""
    register_fleet(svc)
    fixed = outbreak(svc, 0)
    complaint = FeedbackIn(
        channel="hotline",
        text="空调使用1个月后，制冷效果明显下降，噪音比初期增大。",
        received_at=clock.now,
        serial=f"SN-{dev_id(0, 3)}",
    )
    joined = svc.file_feedback(complaint, actor="cs-1").ticket.id
    svc.transition(fixed, "acknowledged", actor="ann")
    svc.comment(fixed, "TXV lot 7 suspected — «évaporateur» checked", actor="ann")
    svc.transition(fixed, "in_progress", actor="ann")
    svc.record_fix(fixed, description="replaced TXV lot 7", effective_from=FIX_TS, actor="ann")
    for u in range(8):
        svc.record_finding(finding(dev_id(0, u), ts=FIX_TS + HOUR + u, active=False))
    assert svc.get_ticket(fixed).status == "closed"
    clock.now += timedelta(days=3)
    later = outbreak(svc, 1)
    svc.comment(later, "looking into it", actor="bob")
    return {"fixed": fixed, "joined": joined, "later": later}


def history_rows(engine: Engine, ticket_id: str) -> list[TicketHistory]:
    with Session(engine) as s:
        return list(
            s.scalars(
                select(TicketHistory)
                .where(TicketHistory.ticket_id == ticket_id)
                .order_by(TicketHistory.seq)
            )
        )


def audit(db_url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    status = cli.main(["audit", "verify", "--db", db_url])
    return status, capsys.readouterr().out.splitlines()


def test_qloops_own_history_verifies(engine, tickets, db_url, capsys) -> None:
    report = verify(engine)
    with engine.connect() as conn:
        n_tickets = conn.scalar(select(func.count()).select_from(Ticket))
        n_entries = conn.scalar(select(func.count()).select_from(TicketHistory))
    assert report == AuditReport(n_tickets, n_entries, ())
    assert n_tickets >= 3 and n_entries >= 20
    rows = history_rows(engine, tickets["fixed"])
    assert [h.seq for h in rows] == list(range(1, len(rows) + 1))
    assert rows[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:], strict=False))
    assert {"opened", "complaint", "transition", "comment", "fix", "verified"} <= {
        h.action for h in rows
    }
    assert audit(db_url, capsys) == (
        0,
        [f"{n_tickets} tickets, {n_entries} entries: all chains verify"],
    )


def _edit(engine: Engine, sql: str, **params: object) -> None:
    with engine.begin() as conn:
        assert conn.execute(text(sql), params).rowcount == 1


def _forge(engine: Engine, ticket_id: str, after: TicketHistory, hash_: str) -> int:
    """A comment appended with SQL, linked to the last entry, with ``hash_`` for its hash."""
    with engine.begin() as conn:
        return conn.execute(
            insert(TicketHistory).returning(TicketHistory.id),
            {
                "ticket_id": ticket_id,
                "seq": after.seq + 1,
                "at": after.at,
                "actor": "ann",
                "action": "comment",
                "note": "the customer agreed",
                "data": {},
                "prev_hash": after.hash,
                "hash": hash_,
            },  # fmt: skip
        ).scalar_one()


@pytest.mark.parametrize("edit", ["note", "at", "data", "actor", "seq"])
def test_an_entry_changed_with_sql_is_named(engine, tickets, db_url, capsys, edit) -> None:
    tid = tickets["fixed"]
    target = history_rows(engine, tid)[3]
    sql = {
        "note": "UPDATE ticket_history SET note = 'nothing happened' WHERE id = :id",
        "at": "UPDATE ticket_history SET at = :at WHERE id = :id",
        "data": "UPDATE ticket_history SET data = '{\"units\": 1}' WHERE id = :id",
        "actor": "UPDATE ticket_history SET actor = 'boss' WHERE id = :id",
        "seq": "UPDATE ticket_history SET seq = 99 WHERE id = :id",
    }[edit]
    _edit(engine, sql, id=target.id, at=datetime(2026, 1, 1))
    (broken,) = verify(engine).broken
    assert (broken.ticket_id, broken.history_id, broken.reason) == (tid, target.id, Reason.CHANGED)
    status, lines = audit(db_url, capsys)
    assert status == 1
    assert lines[0].startswith(f"{tid}: entry {broken.seq} (id {target.id}) changed")
    assert lines[-1].endswith(": 1 broken chain(s)")


def test_a_deleted_entry_is_named(engine, tickets, db_url, capsys) -> None:
    tid = tickets["later"]
    rows = history_rows(engine, tid)
    _edit(engine, "DELETE FROM ticket_history WHERE id = :id", id=rows[1].id)
    (broken,) = verify(engine).broken
    assert (broken.ticket_id, broken.seq, broken.history_id) == (tid, 3, rows[2].id)
    assert (broken.reason, broken.detail) == (Reason.DELETED, "seq 2 missing before it")
    status, lines = audit(db_url, capsys)
    assert status == 1 and lines[0].startswith(f"{tid}: entry 3 (id {rows[2].id}) deleted")


def test_a_deleted_first_entry_and_a_whole_history_are_named(engine, tickets) -> None:
    first = history_rows(engine, tickets["later"])[0]
    _edit(engine, "DELETE FROM ticket_history WHERE id = :id", id=first.id)
    with engine.begin() as conn:
        conn.execute(
            text("DELETE FROM ticket_history WHERE ticket_id = :t"), {"t": tickets["joined"]}
        )
    broken = {b.ticket_id: b for b in verify(engine).broken}
    assert broken.keys() == {tickets["later"], tickets["joined"]}
    assert (broken[tickets["later"]].seq, broken[tickets["later"]].reason) == (2, Reason.DELETED)
    assert (broken[tickets["joined"]].seq, broken[tickets["joined"]].reason) == (
        None,
        Reason.DELETED,
    )


def test_entries_swapped_are_named(engine, tickets) -> None:
    tid = tickets["fixed"]
    rows = history_rows(engine, tid)
    a, b = rows[2].id, rows[3].id
    with engine.begin() as conn:  # the row ids of seq 3 and seq 4 swapped
        for old, new in ((a, -1), (b, a), (-1, b)):
            swap = {"old": old, "new": new}
            conn.execute(text("UPDATE ticket_history SET id = :new WHERE id = :old"), swap)
    (broken,) = verify(engine).broken
    assert (broken.seq, broken.history_id, broken.reason) == (4, a, Reason.DELETED)


def test_an_inserted_entry_is_named(engine, tickets, db_url, capsys) -> None:
    tid = tickets["fixed"]
    last = history_rows(engine, tid)[-1]
    forged = _forge(engine, tid, last, hash_="")
    (broken,) = verify(engine).broken
    assert (broken.ticket_id, broken.seq, broken.history_id) == (tid, last.seq + 1, forged)
    assert broken.reason is Reason.INSERTED
    status, lines = audit(db_url, capsys)
    assert status == 1 and lines[0].startswith(
        f"{tid}: entry {last.seq + 1} (id {forged}) inserted"
    )


def test_an_inserted_entry_with_a_made_up_hash_does_not_verify(engine, tickets) -> None:
    tid = tickets["later"]
    last = history_rows(engine, tid)[-1]
    forged = _forge(engine, tid, last, hash_=last.hash)  # a copied hash
    (broken,) = verify(engine).broken
    assert (broken.ticket_id, broken.history_id, broken.reason) == (tid, forged, Reason.CHANGED)


def test_an_unreadable_entry_does_not_stop_the_audit(tmp_path) -> None:
    """SQLite keeps any text in a JSON or time column: the entry fails, the audit goes on."""
    from cloud.ticketing.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 't.db'}")
    svc = TicketService(engine, Clock(datetime(2026, 11, 22, tzinfo=UTC)))
    register_fleet(svc)
    tid = outbreak(svc, 0)
    rows = history_rows(engine, tid)
    _edit(engine, "UPDATE ticket_history SET data = '{not json' WHERE id = :id", id=rows[0].id)
    _edit(engine, "UPDATE ticket_history SET at = 'yesterday' WHERE id = :id", id=rows[1].id)
    (broken,) = verify(engine).broken
    assert (broken.history_id, broken.reason) == (rows[0].id, Reason.CHANGED)
    out = io.StringIO()
    export(engine, None, None, out)
    (line,) = [t for t in map(json.loads, out.getvalue().splitlines()) if t["id"] == tid]
    assert [h["data"] for h in line["history"][:1]] == ["{not json"]
    assert line["history"][1]["at"] == "yesterday"
    engine.dispose()


def test_entries_of_one_transaction_chain_and_a_rolled_back_savepoint_leaves_no_gap(
    engine, tickets, clock
) -> None:
    tid = tickets["later"]
    before = len(history_rows(engine, tid))
    with Session(for_writing(engine)) as s, s.begin():
        t = s.get(Ticket, tid)
        write_history(s, t, clock.now, HistoryKind.COMMENT, actor="a", note="one")
        write_history(s, t, clock.now, HistoryKind.COMMENT, actor="a", note="two")
        try:
            with s.begin_nested():
                write_history(s, t, clock.now, HistoryKind.COMMENT, actor="a", note="undone")
                raise RuntimeError
        except RuntimeError:
            pass
        write_history(
            s, t, clock.now, HistoryKind.COMMENT, actor="a", note="three", data={"k": (1, 2)}
        )
    rows = history_rows(engine, tid)
    assert [(h.seq, h.note) for h in rows[before:]] == [
        (before + 1, "one"),
        (before + 2, "two"),
        (before + 3, "three"),
    ]
    assert rows[-1].data == {"k": [1, 2]}
    assert verify(engine).ok


def test_concurrent_writers_append_one_after_the_other(engine, tickets) -> None:
    tid = tickets["later"]
    before = len(history_rows(engine, tid))
    writers = [TicketService(engine, support.Clock(datetime.now(UTC))) for _ in range(4)]
    errors = run_together(
        lambda w, i: w.comment(tid, f"comment {i}", actor=f"p{i}"),
        [(w, i) for i, w in enumerate(writers)],
    )
    assert errors == []
    rows = history_rows(engine, tid)
    assert [h.seq for h in rows] == list(range(1, before + 5))
    assert verify(engine).ok


def test_two_entries_at_the_same_place_are_refused(engine, tickets) -> None:
    last = history_rows(engine, tickets["later"])[-1]
    row = {
        "ticket_id": last.ticket_id, "seq": last.seq, "at": last.at, "actor": "x",
        "action": "comment", "data": {}, "prev_hash": last.prev_hash, "hash": "",
    }  # fmt: skip
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(TicketHistory), row)


# --- export ---------------------------------------------------------------------------------


def exported(engine: Engine, since: date | None, until: date | None) -> list[dict]:
    out = io.StringIO()
    summary = export(engine, since, until, out, page=2)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert summary.tickets == len(lines)
    assert summary.entries == sum(len(t["history"]) for t in lines)
    return lines


def test_export_writes_tickets_opened_in_the_range_with_history_and_fixes(engine, tickets) -> None:
    first_day = date(2026, 11, 22)
    lines = exported(engine, first_day, first_day)
    ids = [t["id"] for t in lines]
    assert tickets["fixed"] in ids and tickets["joined"] in ids and tickets["later"] not in ids
    assert all(t["opened_at"].startswith("2026-11-22T") for t in lines)
    fixed = next(t for t in lines if t["id"] == tickets["fixed"])
    assert fixed["status"] == "closed" and fixed["evidence"]["devices"]
    (fix,) = fixed["fixes"]
    assert (fix["description"], fix["outcome"], fix["devices"]) == (
        "replaced TXV lot 7",
        "verified",
        [dev_id(0, u) for u in range(8)],
    )
    rows = history_rows(engine, tickets["fixed"])
    assert [(h["seq"], h["hash"], h["prev_hash"]) for h in fixed["history"]] == [
        (r.seq, r.hash, r.prev_hash) for r in rows
    ]
    comment = next(h for h in fixed["history"] if h["action"] == "comment")
    stored = rows[comment["seq"] - 1]
    assert comment["note"] == stored.note == "TXV lot 7 suspected — «évaporateur» checked"
    assert (comment["at"], comment["actor"]) == (stored.at.isoformat(), "ann")

    later = exported(engine, date(2026, 11, 23), None)  # with the device tickets it absorbed
    assert tickets["later"] in [t["id"] for t in later]
    assert all(t["opened_at"].startswith("2026-11-25T") for t in later)
    assert all(t["fixes"] == [] and len(t["history"]) >= 2 for t in later)
    everything = exported(engine, None, None)
    assert len(everything) == len(lines) + len(later)
    assert [t["opened_at"] for t in everything] == sorted(t["opened_at"] for t in everything)
    assert exported(engine, date(2026, 11, 30), None) == []


def test_qloop_export_writes_a_file(engine, tickets, db_url, tmp_path, capsys) -> None:
    path = tmp_path / "archive.jsonl"
    args = ["export", "--db", db_url, "--since", "2026-11-22", "--until", "2026-11-22"]
    assert cli.main([*args, "--output", str(path)]) == 0
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert {t["id"] for t in lines} >= {tickets["fixed"], tickets["joined"]}
    assert tickets["later"] not in {t["id"] for t in lines}
    assert "\\u" not in path.read_text(encoding="utf-8")  # the words as written
    assert capsys.readouterr().err.startswith(f"exported {len(lines)} tickets (")
    assert not (tmp_path / "archive.jsonl.partial").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "--since", "2026-13-01"], "qloop export: --since (QLOOP_SINCE) from the"),
        (["export", "--since", "2026-12-02", "--until", "2026-12-01"], "is after --until"),
        (["export"], "qloop export: no ticket database at"),
        (["audit", "verify"], "qloop audit verify: no ticket database at"),
    ],
)
def test_refusals_are_one_line(tmp_path, args, message) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main([*args, "--db", f"sqlite:///{tmp_path / 'missing.db'}"])
    assert message in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "missing.db").exists()


def test_an_older_schema_is_not_upgraded_by_the_audit(tmp_path) -> None:
    from cloud.ticketing.db import make_engine, migrate

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = make_engine(url, upgrade=False)
    migrate(old, "0002")
    old.dispose()
    with pytest.raises(SystemExit, match="at schema revision 0002, not 0"):
        cli.main(["audit", "verify", "--db", url])
