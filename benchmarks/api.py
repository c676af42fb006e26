"""Ticketing API latency: ``GET /api/v1/tickets`` with 10,000 tickets in the store,
served by the real ``qloop api`` process (SQLite), loaded from this process by a few threads, each
with its own keep-alive ``http.client`` connection (pure Python: the bench needs nothing extra).
Same-run baseline: ``GET /healthz`` on the same server with the same load.

Tickets are inserted directly through the ORM (``cloud.ticketing.models``): opening 10,000
through the service would take minutes and measure the service, not the API. They are device
tickets spread over models, batches, faults and statuses so the filters select real subsets.
"""

from __future__ import annotations

import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from benchmarks.alarm import ApiClient, start_api
from benchmarks.common import Result, stop_process
from cloud.ticketing.db import make_engine
from cloud.ticketing.models import Ticket
from cloud.ticketing.service import TicketService

FAULTS = ("cooling_decline", "noise_rise", "vibration_rise", "overcurrent", "sensor_stuck")
MODELS = ("KFR-26GW", "KFR-35GW", "KFR-50GW")
STATUSES = ("open", "acknowledged", "closed")


def fill(db_url: str, n: int) -> None:
    engine = make_engine(db_url)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with Session(engine) as s:
        for k in range(n):
            opened = t0 + timedelta(seconds=60 * k)
            device = f"ac-{k:06d}"
            s.add(
                Ticket(
                    id=f"PF{opened:%Y%m}{k:05d}",
                    scope="device",
                    model=MODELS[k % len(MODELS)],
                    batch=f"B{k % 40:04d}",
                    device=device,
                    fault=FAULTS[k % len(FAULTS)],
                    category="performance",
                    severity="I",
                    priority="low",
                    department="R&D",
                    departments=["R&D"],
                    status=STATUSES[k % len(STATUSES)],
                    affected_devices=1,
                    batch_devices=250,
                    detected_at=opened,
                    opened_at=opened,
                    due_at=opened + timedelta(days=3),
                    updated_at=opened,
                    evidence={"devices": [{"device": device, "score": 0.9, "magnitude": 1.5}]},
                    cycle=0,
                    cycle_at=opened,
                )
            )
        s.commit()
    engine.dispose()


def load(port: int, path: str, threads: int, per_thread: int) -> tuple[list[float], float]:
    """Latencies (s) of ``threads × per_thread`` GETs of ``path``, and requests/s overall."""
    lat: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []

    def run() -> None:
        client = ApiClient(port)
        mine = []
        for _ in range(per_thread):
            t0 = time.perf_counter()
            status, _ = client.get(path)
            mine.append(time.perf_counter() - t0)
            if status != 200:
                errors.append(f"{path}: HTTP {status}")
        with lock:
            lat.extend(mine)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - t0
    if errors:
        raise RuntimeError(errors[0])
    return lat, len(lat) / wall


def bench_api(quick: bool = False) -> Result:
    res = Result("api")
    n, threads, per_thread = (200, 2, 20) if quick else (10_000, 4, 250)
    with tempfile.TemporaryDirectory(prefix="qloop-bench-api-") as tmp:
        wd = Path(tmp)
        db_url = f"sqlite:///{wd / 'tickets.db'}"
        fill(db_url, n)
        # steady state: a running system has already flagged its overdue tickets (the API's SLA
        # pass would otherwise flag all of them at start, during the measurement)
        t0 = time.perf_counter()
        report = TicketService(make_engine(db_url), lambda: datetime.now(UTC)).check_sla()
        res.notes.append(
            f"SLA pass before the measurement: {len(report.flagged):,} overdue tickets flagged "
            f"in {time.perf_counter() - t0:.1f} s (once; later passes skip flagged tickets)"
        )
        proc, port = start_api(db_url, wd)
        try:
            load(port, "/healthz", threads, 5)  # warm-up: imports, connection pools
            base, base_rps = load(port, "/healthz", threads, per_thread)
            for label, path in (
                ("default page (50)", "/api/v1/tickets"),
                (
                    "filtered: status=open&fault=noise_rise",
                    "/api/v1/tickets?status=open&fault=noise_rise",
                ),
                (
                    "filtered: model=KFR-35GW&batch=B0007",
                    "/api/v1/tickets?model=KFR-35GW&batch=B0007",
                ),
            ):
                lat, rps = load(port, path, threads, per_thread)
                res.add_latency(f"GET /api/v1/tickets {label}", lat, "GET /healthz", base, 0.05)
                res.add(
                    f"GET /api/v1/tickets {label}, throughput",
                    rps,
                    "req/s",
                    "GET /healthz",
                    base_rps,
                )
        finally:
            stop_process(proc)
    res.params = {"tickets": n, "threads": threads, "requests_per_case": threads * per_thread}
    res.notes.append(
        f"{n:,} tickets (SQLite); {threads} client threads × {per_thread} requests on keep-alive "
        "connections, from the benchmark process."
    )
    return res
