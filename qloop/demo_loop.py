"""The closed loop in ``qloop demo``: one complaint worked from acknowledgement to the customer's
verdict, then the month's report.

The dealer's complaint about scratched, dented units is worked as the procedures describe,
through the API as an engineer and a customer-service agent would: acknowledged, a corrective
measure with an owner and a due date, the cause analysed (5-Why), the fix recorded and checked
effective by the quality engineer (no sensor sees a dent), then the callback. The dealer scores
it 2 — the ticket is re-dispatched to Production —, a second fix follows, and a callback of 5
closes it. The month's report (CONTRACTS.md §4.3) is printed in a few lines at the end.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any


class Api:
    """A few calls of the ticket API with one token."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        req = urllib.request.Request(
            f"{self.base}/api/v1{path}",
            method=method,
            data=None if body is None else json.dumps(body, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{method} {path}: HTTP {e.code}: {e.read()[:300]!r}") from None


def _fix(api: Api, tid: str, what: str) -> None:
    now = datetime.now(UTC).isoformat()
    api.call("POST", f"/tickets/{tid}/fix", {"description": what, "effective_from": now})
    t = api.call("POST", f"/tickets/{tid}/verification", {"result": "effective", "note": what})
    print(f"    fix recorded, checked effective by the quality engineer → {t['status']}")


def work_complaint(api: Api, tid: str) -> str:
    """Work ticket ``tid`` through the loop; its final status."""
    print(f"\nqloop demo: the loop on {tid} (the dealer's damaged deliveries):")
    for to in ("acknowledged", "in_progress"):
        api.call("POST", f"/tickets/{tid}/transitions", {"to": to, "note": "demo"})
    due = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    measure = {
        "term": "short", "kind": "replace", "action": "replace the 5 panels on site",
        "owner": "王工", "department": "Service", "due_at": due,
    }  # fmt: skip
    t = api.call("POST", f"/tickets/{tid}/measures", measure)
    print(f"    measure: {measure['action']} — 王工, Service, due in 3 days")
    cause = {
        "five_why": ["面板划伤", "运输中摩擦", "包装无护角", "包装规范未要求护角"],
        "fishbone": {"method": ["包装规范"], "material": ["薄膜太薄"]},
        "summary": "packing",
    }
    api.call("PUT", f"/tickets/{tid}/cause", cause)
    print(f"    cause (5-Why): {' → '.join(cause['five_why'])}")
    mid = t["measures"][0]["id"]
    api.call(
        "PATCH", f"/tickets/{tid}/measures/{mid}", {"status": "done", "record": "5 panels replaced"}
    )
    _fix(api, tid, "panels replaced; padded corners added to the packing spec")
    body = {"note": "还有一台有划痕", "customer": "华东经销商", "satisfaction": "dissatisfied"}
    t = api.call("POST", f"/tickets/{tid}/followups", body)
    status, back = t["status"], t["department"]
    print(f"    callback: the dealer is dissatisfied (2) → {status}, back to {back}")
    for to in ("acknowledged", "in_progress"):
        api.call("POST", f"/tickets/{tid}/transitions", {"to": to, "note": "demo"})
    _fix(api, tid, "the last panel replaced")
    body = {"note": "满意", "customer": "华东经销商", "score": 5}
    t = api.call("POST", f"/tickets/{tid}/followups", body)
    figures = t.get("measure_figures") or {}
    print(
        f"    callback: 5 → {t['status']}; measures done {figures.get('completion_rate', 0):.0%},"
        f" {len(t['history'])} history entries, each chained to the one before"
    )
    return str(t["status"])


def print_report(api: Api, month: str) -> None:
    """The month's report (CONTRACTS.md §4.3) in a few lines."""
    r = api.call("GET", f"/reports/monthly?month={month}")
    print(f"\nqloop demo: the report of {month}: {r['tickets']} tickets {r['by_source']}")
    print("    (the fleet's own tickets are dated in its simulated time: see its month's report)")
    shares = {k: v for k, v in r["by_category"].items() if v}
    print(f"    problem types: {shares}")
    top = ", ".join(f"{f['key']} {f['tickets']}" for f in r["top_faults"])
    print(f"    top problems: {top}")
    for d in r["departments"]:
        print(
            f"    {d['department']:<10} {d['tickets']} tickets, on time"
            f" {_pct(d['on_time_rate'])}, measures done {_pct(d.get('measure_completion_rate'))}"
        )
    s = r["satisfaction"]
    print(
        f"    satisfaction: {s['responses']} callbacks, mean {s['mean_score']}, "
        f"{s['low_scores']} low; recurrence {_pct(r['recurrence_rate'])}"
    )


def print_board(api: Api) -> None:
    """The dashboard (``GET /api/v1/board``) in a few lines: what is open, the triage list's
    top, this month's figures against their targets."""
    b = api.call("GET", "/board")
    print(
        f"\nqloop demo: the dashboard: {b['open_tickets']} open ticket(s), {b['overdue']} overdue"
    )
    for t in b["triage"][:3]:
        problem = t["fault"] or t["category"]
        print(f"    triage: {t['id']} {t['severity']:<3} {t['department']:<10} {problem}")
    for row in b["figures"][:1]:  # all departments together
        figures = ", ".join(
            f"{f} {_value(v['value'])} ({v['op']} {v['target']}{', missed' if v['missed'] else ''})"
            for f, v in row.items()
            if isinstance(v, dict)
        )
        print(f"    {b['month']}: {figures}")
    if b["alerts"]:
        print(f"    {len(b['alerts'])} figure(s) below target two weeks running: alerted")


def _value(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"
