"""Feedback intake: ``POST /api/v1/feedback`` served by the real ``qloop api`` process (SQLite),
loaded from this process by a few threads, each with its own keep-alive ``http.client``
connection; and the classifier's throughput on one core.

The store is what a running system holds: a registered fleet (``Device`` rows, inserted through
the ORM as ``api.py`` inserts tickets), open batch tickets from telemetry for a quarter of the
batches, and earlier feedback filed through :meth:`TicketService.file_feedback` over the past
60 days (the older ones closed), so the unit lookup, the repeat queries and the batch join all
have rows to look at. The complaints sent are the texts of the shipped corpus
(``cloud.feedback.labelled.load_corpus``) on varied channels, from new contacts, a share of
them naming a registered unit's serial (in the form or in the text); every fifth is a repeat:
the contact of an open earlier complaint (written differently) describing the same problem in
other words, which must answer 200.

Same-run baselines: ``GET /healthz`` and ``GET /api/v1/tickets?limit=50`` on the same server with
the same load; then POSTs and ``GET /healthz`` from one client alone, a filing without waiting
for SQLite's write lock. The API fits its classifier in the background at start: one POST is
answered before anything is timed.

Classification throughput is timed in this process pinned to one core, with
``cloud.feedback.evaluate.throughput`` over the corpus texts (one batch, and one call per text),
beside field extraction alone. Last, a few complaints are filed in-process (no HTTP) with the
steps of ``cloud.ticketing.complaints.file_feedback`` timed (its helpers wrapped for the while,
by name), to show where a POST's time goes.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.alarm import ApiClient, start_api
from benchmarks.common import Result, percentile, stop_process
from benchmarks.feedback_data import (
    FULL,
    HISTORY,
    QUICK,
    STILL_OPEN,
    TARGET_S,
    complaint_bodies,
    fill_feedback,
    fill_fleet,
)
from cloud.feedback.classify import FeedbackClassifier
from cloud.feedback.evaluate import throughput
from cloud.feedback.extract import extract
from cloud.feedback.labelled import load_corpus
from cloud.feedback.model import shipped_classifier
from cloud.ticketing import complaints
from cloud.ticketing.complaints import FeedbackIn
from cloud.ticketing.db import make_engine
from cloud.ticketing.service import TicketService


def _post(client: ApiClient, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    payload = json.dumps(body, ensure_ascii=False).encode()
    headers = {**client.headers, "Content-Type": "application/json"}
    client.conn.request("POST", path, body=payload, headers=headers)
    r = client.conn.getresponse()
    return r.status, r.read()


@dataclass
class Timed:
    """One request: which kind, its latency (s), its status (0: no answer) and what came back."""

    kind: str
    seconds: float
    status: int
    body: bytes


def load(
    port: int,
    work: Sequence[Sequence[tuple[str, str, dict[str, Any] | None]]],
) -> tuple[list[Timed], float]:
    """Each thread sends its ``(kind, path, body)`` list (a GET when the body is None) on its
    own connection; every request timed, and requests/s overall."""
    done: list[Timed] = []
    lock = threading.Lock()

    def run(items: Sequence[tuple[str, str, dict[str, Any] | None]]) -> None:
        client = ApiClient(port)
        mine = []
        for kind, path, body in items:
            t0 = time.perf_counter()
            try:
                status, answer = client.get(path) if body is None else _post(client, path, body)
            except (OSError, http.client.HTTPException) as exc:
                status, answer = 0, repr(exc).encode()
                client = ApiClient(port)
            mine.append(Timed(kind, time.perf_counter() - t0, status, answer))
        with lock:
            done.extend(mine)

    workers = [threading.Thread(target=run, args=(items,)) for items in work]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return done, len(done) / (time.perf_counter() - t0)


@contextmanager
def one_core() -> Iterator[str]:
    """Pin the calling thread to one CPU for the block; says which (or that it could not)."""
    if not hasattr(os, "sched_setaffinity"):
        yield "not pinned (no sched_setaffinity)"
        return
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield f"pinned to CPU {cpu}"
    finally:
        os.sched_setaffinity(0, before)


def _timed(fn: Callable[..., Any], spent: dict[str, float], name: str) -> Callable[..., Any]:
    def wrapper(*args: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kw)
        finally:
            spent[name] += time.perf_counter() - t0

    return wrapper


class _TimedModel:
    """The classifier with its per-call ``predict`` timed."""

    def __init__(self, model: FeedbackClassifier, spent: dict[str, float]) -> None:
        self.predict = _timed(model.predict, spent, "classification (predict)")


STEPS = {
    "_unit": "unit lookup by serial",
    "_repeat_of": "repeat queries",
    "_open": "opening the ticket",
    "_join_batch": "batch join",
    "_detail": "reading the ticket back",
    "extract": "field extraction",
}


def breakdown(
    db_url: str, model: FeedbackClassifier, bodies: Sequence[dict[str, Any]]
) -> tuple[float, dict[str, float]]:
    """File ``bodies`` in-process through the service (real clock, no HTTP) with the steps of
    ``complaints.file_feedback`` timed: mean ms per complaint in all, and per step."""
    spent: dict[str, float] = defaultdict(float)
    timed_model = _TimedModel(model, spent)
    service = TicketService(
        make_engine(db_url),
        lambda: datetime.now(UTC),
        classifier=lambda: timed_model,  # type: ignore[arg-type, return-value]
    )
    saved = {name: getattr(complaints, name) for name in STEPS if hasattr(complaints, name)}
    for name, fn in saved.items():  # a step that no longer exists is left in "the rest"
        setattr(complaints, name, _timed(fn, spent, STEPS[name]))
    total = 0.0
    try:
        for b in bodies:
            fb = FeedbackIn(
                channel=b["channel"],
                text=b["text"],
                received_at=datetime.fromisoformat(b["received_at"]),
                customer_name=b["customer"]["name"],
                contact=b["customer"]["contact"],
                model=b.get("model"),
                serial=b.get("serial"),
                demand=b.get("demand"),
            )
            t0 = time.perf_counter()
            service.file_feedback(fb, actor="bench")
            total += time.perf_counter() - t0
    finally:
        for name, fn in saved.items():
            setattr(complaints, name, fn)
        service.engine.dispose()
    n = max(1, len(bodies))
    return total / n * 1000, {k: v / n * 1000 for k, v in spent.items()}


def _add_percentiles(
    res: Result,
    name: str,
    lat: Sequence[float],
    base_name: str,
    base: Sequence[float],
    quantiles: Sequence[int] = (50, 95, 99),
) -> None:
    """Percentiles of ``lat`` (s) in ms beside the baseline's; the procedure's 5 minutes on p99."""
    for q in quantiles:
        res.add(
            f"{name}, p{q}",
            percentile(lat, q) * 1000,
            "ms",
            f"{base_name} p{q}",
            percentile(base, q) * 1000,
            target=f"p99 <= {TARGET_S * 1000:,.0f} ms (a ticket within 5 min)" if q == 99 else "",
            met=percentile(lat, q) <= TARGET_S if q == 99 else None,
        )


@dataclass
class Phases:
    """What the running API answered, phase by phase (each with its requests/s)."""

    first_post_s: float
    health: tuple[list[Timed], float]
    page: tuple[list[Timed], float]
    filed: tuple[list[Timed], float]
    solo_health: tuple[list[Timed], float]
    solo_filed: tuple[list[Timed], float]


def measure(
    port: int,
    threads: int,
    per_thread: int,
    posts: Sequence[Sequence[tuple[str, dict[str, Any]]]],
    warm: Sequence[tuple[str, dict[str, Any]]],
) -> Phases:
    """Warm up (the first POST waits for the classifier), then each case from ``threads``
    threads, then ``GET /healthz`` and the last list of ``posts`` from one thread alone."""

    def gets(path: str, n: int, clients: int = threads) -> list[list[tuple[str, str, None]]]:
        return [[("get", path, None)] * n for _ in range(clients)]

    def feedback(items: Sequence[tuple[str, dict[str, Any]]]) -> list[tuple[str, str, Any]]:
        return [(kind, "/api/v1/feedback", body) for kind, body in items]

    t0 = time.perf_counter()
    status, answer = _post(ApiClient(port), "/api/v1/feedback", warm[0][1])
    first_post_s = time.perf_counter() - t0
    if status not in (200, 201):
        raise RuntimeError(f"the first POST answered {status}: {answer[:500]!r}")
    load(port, gets("/healthz", 5))  # warm-up: connections, imports, pools
    load(port, gets("/api/v1/tickets?limit=50", 5))
    load(port, [feedback(warm[1:])])
    return Phases(
        first_post_s,
        health=load(port, gets("/healthz", per_thread)),
        page=load(port, gets("/api/v1/tickets?limit=50", per_thread)),
        filed=load(port, [feedback(items) for items in posts[:threads]]),
        solo_health=load(port, gets("/healthz", per_thread, clients=1)),
        solo_filed=load(port, [feedback(posts[threads])]),
    )


def bench_feedback(quick: bool = False) -> Result:
    res = Result("feedback")
    sizes = QUICK if quick else FULL
    rng = random.Random(20261201)
    now = datetime.now(UTC)
    texts = [r.text for r in load_corpus()]
    t0 = time.perf_counter()
    model = shipped_classifier()
    fit_s = time.perf_counter() - t0
    predicted = model.predict_many(texts)
    by_problem: dict[tuple[str, str | None], list[int]] = defaultdict(list)
    for k, c in enumerate(predicted):
        by_problem[(c.category, c.fault)].append(k)
    with tempfile.TemporaryDirectory(prefix="qloop-bench-feedback-") as tmp:
        wd = Path(tmp)
        db_url = f"sqlite:///{wd / 'tickets.db'}"
        units, batch_tickets = fill_fleet(db_url, sizes, now)
        earlier, fill_s = fill_feedback(db_url, sizes.earlier, units, texts, predicted, now, rng)
        # one list per client thread, one for the single client, one for warm-up and in-process
        posts = [
            complaint_bodies(t, sizes.per_thread, units, texts, by_problem, earlier, now, rng)
            for t in range(sizes.threads + 1)
        ]
        extra = complaint_bodies(
            sizes.threads + 1, sizes.in_process + 3, units, texts, by_problem, earlier, now, rng
        )
        proc, port = start_api(db_url, wd)
        try:
            phases = measure(port, sizes.threads, sizes.per_thread, posts, extra[:3])
        finally:
            stop_process(proc)
        spent_ms, steps = breakdown(db_url, model, [b for _, b in extra[3:]])

    (health, health_rps), (page, page_rps), (filed, filed_rps) = (
        phases.health,
        phases.page,
        phases.filed,
    )
    solo_health, solo_filed = phases.solo_health[0], phases.solo_filed[0]
    every_post = filed + solo_filed
    bad = [r for r in health + page + solo_health if r.status != 200]
    bad += [r for r in every_post if r.status not in (200, 201)]

    def seconds(rs: Sequence[Timed]) -> list[float]:
        return [r.seconds for r in rs if r.status in (200, 201)]

    post = "POST /api/v1/feedback"
    _add_percentiles(res, post, seconds(filed), "GET /healthz", seconds(health))
    page_name = "GET /api/v1/tickets?limit=50"
    _add_percentiles(res, post, seconds(filed), page_name, seconds(page))
    res.add(f"{post}, throughput", filed_rps, "req/s", "GET /healthz", health_rps)
    res.add(f"{post}, throughput", filed_rps, "req/s", page_name, page_rps)
    _add_percentiles(
        res,
        f"{post}, one client alone",
        seconds(solo_filed),
        "GET /healthz, one client alone",
        seconds(solo_health),
        quantiles=(50, 99),
    )

    sample = texts if sizes.texts == 0 else texts[: sizes.texts]
    with one_core() as pinned:
        per_text = throughput(lambda ts: [extract(t) for t in ts], sample, repeats=sizes.passes)
        batch = throughput(model.predict_many, sample, repeats=sizes.passes)
        single = throughput(lambda ts: [model.predict(t) for t in ts], sample, repeats=sizes.passes)
    extraction = "field extraction (extract), one text per call"
    res.add("classification, one batch (predict_many)", batch, "texts/s", extraction, per_text)
    res.add("classification, one text per call (predict)", single, "texts/s", extraction, per_text)

    statuses = Counter((r.kind, r.status) for r in every_post)
    answered = {f"{kind} → HTTP {status}": n for (kind, status), n in sorted(statuses.items())}
    joined = sum(1 for r in every_post if r.status == 201 and json.loads(r.body).get("parent"))
    by_kind = {kind: seconds([r for r in filed if r.kind == kind]) for kind in ("new", "repeat")}
    res.params = {
        "devices": sizes.devices,
        "batch_tickets": batch_tickets,
        "earlier_feedback": sizes.earlier,
        "earlier_open": len(earlier),
        "threads": sizes.threads,
        "requests_per_case": sizes.threads * sizes.per_thread,
        "answered": answered,
        "errors": len(bad),
        "joined_batch": joined,
        "texts": len(sample),
        "first_post_s": phases.first_post_s,
        "in_process_ms": spent_ms,
        "in_process_steps_ms": steps,
    }
    res.notes.append(
        f"{sizes.devices:,} registered units in batches of {sizes.batch_size}, an open batch "
        f"ticket per classifiable fault in every fourth batch; {sizes.earlier:,} earlier "
        f"complaints filed through the service over {HISTORY.days} days ({fill_s:.1f} s), "
        f"those older than {STILL_OPEN.days} days closed ({len(earlier):,} open tickets left "
        f"to repeat). {sizes.threads} client threads × {sizes.per_thread} requests per case on "
        f"keep-alive connections, from the benchmark process, then one client alone × "
        f"{sizes.per_thread}; the first POST answered {phases.first_post_s:.1f} s after the "
        "API listened (it fits its classifier in the background; the same fit took "
        f"{fit_s:.1f} s in the benchmark process)."
    )
    res.notes.append(
        "POST answers (both loads): "
        + ", ".join(f"{k}: {v}" for k, v in answered.items())
        + f"; {joined} new tickets joined their batch ticket; "
        + (
            f"**{len(bad)} errors** (first: {bad[0].status} {bad[0].body[:200]!r})"
            if bad
            else "no errors"
        )
        + f". p50 / p99 by kind, {sizes.threads} threads: "
        + "; ".join(
            f"{kind} {percentile(v, 50) * 1000:,.1f} / {percentile(v, 99) * 1000:,.1f} ms"
            for kind, v in by_kind.items()
        )
        + "."
    )
    res.notes.append(
        f"Classification on one core ({pinned}), best of {sizes.passes} passes over "
        f"{len(sample)} corpus texts: {1000 / single:.2f} ms per text one call per text, "
        f"{1000 / batch:.3f} ms in one batch."
    )
    res.notes.append(
        f"In-process, the same store after the run, {len(extra) - 3} complaints through "
        f"TicketService.file_feedback (no HTTP): {spent_ms:.1f} ms each on average, of which "
        + ", ".join(f"{k} {v:.1f} ms" for k, v in sorted(steps.items(), key=lambda kv: -kv[1]))
        + f"; the rest ({spent_ms - sum(steps.values()):.1f} ms) is the transaction itself "
        "(the write lock, the duplicate check, the feedback row, the commit)."
    )
    return res
