"""The store the feedback benchmark runs against (``benchmarks/feedback.py``): a registered fleet,
open batch tickets from telemetry, earlier feedback over the past 60 days, and the complaints to
send — new ones from the shipped corpus and every fifth a repeat of an open one."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from cloud.feedback.classify import Classification
from cloud.feedback.extract import DEMANDS
from cloud.feedback.labelled import CHANNELS
from cloud.ticketing.complaints import FeedbackIn
from cloud.ticketing.db import make_engine
from cloud.ticketing.ids import next_ticket_id
from cloud.ticketing.models import Device, Ticket
from cloud.ticketing.policy import TicketPolicy
from cloud.ticketing.service import TicketService
from contract.faults import FAULTS

MODELS = ("KFR-26GW", "KFR-35GW", "KFR-50GW")
NAMES = ("张先生", "李女士", "王先生", "刘女士", "陈先生", "赵女士", "Mr. Smith", "Ms. Brown")
CST = timezone(timedelta(hours=8))  # customers' local time, as the call centre records it
HISTORY = timedelta(days=60)  # the earlier feedback spans this much time before the run
STILL_OPEN = timedelta(days=14)  # earlier feedback tickets younger than this are not closed
TARGET_S = 300.0  # the procedure: a ticket within 5 minutes of the feedback
REPEAT_EVERY = 5  # every fifth complaint sent repeats an open one: 20 %
SERIAL_SHARE = 0.3  # complaints naming a registered unit's serial
BATCH_FAULTS = ("cooling_decline", "noise_rise", "vibration_rise", "overcurrent")


@dataclass(frozen=True)
class Sizes:
    devices: int
    batch_size: int
    earlier: int  # feedback filed before the run
    threads: int
    per_thread: int
    texts: int  # for the throughput (0: the whole corpus)
    passes: int  # timed passes of the throughput, the best counts
    in_process: int  # complaints filed in-process for the breakdown


QUICK = Sizes(40, 10, 30, 2, 6, 30, 2, 6)
FULL = Sizes(3_000, 100, 2_000, 4, 150, 0, 5, 200)


@dataclass(frozen=True)
class Unit:
    device: str
    model: str
    batch: str
    serial: str


@dataclass(frozen=True)
class Earlier:
    """An earlier complaint whose ticket is still open: what a repeat of it reuses."""

    contact: str
    serial: str | None
    problem: tuple[str, str | None]  # (category, fault) as classified


def fill_fleet(db_url: str, sizes: Sizes, now: datetime) -> tuple[list[Unit], int]:
    """Register ``sizes.devices`` units and open a telemetry batch ticket for every fault the
    feedback classifier can name in every fourth batch (acknowledged, not overdue); the units
    and the number of batch tickets."""
    units = []
    for k in range(sizes.devices):
        b = k // sizes.batch_size
        units.append(Unit(f"ac-{k:06d}", MODELS[b % len(MODELS)], f"B{b:04d}", f"SN24{k:08d}"))
    first_seen = (now - timedelta(days=400)).timestamp()
    engine = make_engine(db_url)
    with Session(engine) as s:
        for u in units:
            s.add(
                Device(
                    device=u.device,
                    product="air_conditioner",
                    model=u.model,
                    batch=u.batch,
                    serial=u.serial,
                    firmware="2.3.0",
                    first_seen_ts=first_seen,
                    last_seen_ts=now.timestamp(),
                )
            )
        batches = sorted({(u.model, u.batch) for u in units})[::4]
        policy = TicketPolicy()
        opened = now - timedelta(days=20)
        for model, batch in batches:
            for fault in BATCH_FAULTS:
                routed = policy.departments(fault, FAULTS[fault], model)
                s.add(
                    Ticket(
                        id=next_ticket_id(s, opened),
                        scope="batch",
                        model=model,
                        batch=batch,
                        device=None,
                        fault=fault,
                        category=FAULTS[fault],
                        severity="II",
                        priority="urgent" if FAULTS[fault] == "safety" else "normal",
                        department=routed[0],
                        departments=list(routed),
                        status="acknowledged",
                        affected_devices=3,
                        batch_devices=sizes.batch_size,
                        detected_at=opened,
                        opened_at=opened,
                        due_at=now + timedelta(days=30),
                        updated_at=opened,
                        evidence={"devices": []},
                        cycle=0,
                        cycle_at=opened,
                    )
                )
                s.flush()
        s.commit()
    engine.dispose()
    return units, len(batches) * len(BATCH_FAULTS)


def fill_feedback(
    db_url: str,
    n: int,
    units: Sequence[Unit],
    texts: Sequence[str],
    predicted: Sequence[Classification],
    now: datetime,
    rng: random.Random,
) -> tuple[list[Earlier], float]:
    """File ``n`` complaints through the service, spread over the :data:`HISTORY` before
    ``now`` (each at its own time), close those older than :data:`STILL_OPEN` and flag the
    overdue rest; the complaints whose ticket is open, and the seconds filing took."""
    clock_at = [now]
    service = TicketService(make_engine(db_url), lambda: clock_at[0])
    kept: list[tuple[datetime, Earlier]] = []
    t0 = time.perf_counter()
    for i in range(n):
        at = now - HISTORY + HISTORY * (i / n)
        clock_at[0] = at
        k = rng.randrange(len(texts))
        unit = rng.choice(units) if rng.random() < SERIAL_SHARE else None
        contact = f"138{i:08d}"
        filed = service.file_feedback(
            FeedbackIn(
                channel=rng.choice(CHANNELS),
                text=texts[k],
                received_at=(at - timedelta(minutes=rng.randrange(1, 120))).astimezone(CST),
                customer_name=rng.choice(NAMES),
                contact=contact,
                model=unit.model if unit else None,
                serial=unit.serial if unit else None,
                demand=rng.choice(DEMANDS),
            ),
            actor="bench",
            classification=predicted[k],
        )
        if filed.created:
            problem = (predicted[k].category, predicted[k].fault)
            kept.append((at, Earlier(contact, unit.serial if unit else None, problem)))
    seconds = time.perf_counter() - t0
    with service.engine.begin() as conn:
        conn.execute(
            update(Ticket)
            .where(Ticket.source == "feedback", Ticket.opened_at < now - STILL_OPEN)
            .values(status="closed")
        )
    clock_at[0] = now
    service.check_sla()  # steady state: the API's first SLA pass would flag them mid-run
    service.engine.dispose()
    return [e for at, e in kept if at >= now - STILL_OPEN], seconds


def complaint_bodies(
    thread: int,
    count: int,
    units: Sequence[Unit],
    texts: Sequence[str],
    by_problem: dict[tuple[str, str | None], list[int]],
    earlier: Sequence[Earlier],
    now: datetime,
    rng: random.Random,
) -> list[tuple[str, dict[str, Any]]]:
    """``count`` request bodies for one thread, each labelled ``new`` or ``repeat``."""
    out: list[tuple[str, dict[str, Any]]] = []
    for j in range(count):
        received = (now - timedelta(seconds=thread * count + j)).astimezone(CST).isoformat()
        body: dict[str, Any] = {
            "channel": rng.choice(CHANNELS),
            "received_at": received,
            "demand": rng.choice(DEMANDS),
        }
        if earlier and j % REPEAT_EVERY == REPEAT_EVERY - 1:
            e = rng.choice(earlier)
            k = rng.choice(by_problem[e.problem])  # the same problem in other words
            contact = f"+86 {e.contact[:3]}-{e.contact[3:7]}-{e.contact[7:]}"
            body |= {"text": texts[k], "customer": {"name": rng.choice(NAMES), "contact": contact}}
            if e.serial:
                body["serial"] = e.serial
            out.append(("repeat", body))
            continue
        k = rng.randrange(len(texts))
        contact = f"139{thread:02d}{j:06d}"
        if body["channel"] in ("email", "online"):
            contact = f"user{thread}.{j}@example.com"
        text = texts[k]
        if rng.random() < SERIAL_SHARE:
            unit = rng.choice(units)
            if rng.random() < 0.5:
                body |= {"serial": unit.serial, "model": unit.model}
            else:  # only in the words: extraction finds it
                text += (
                    f" 机身序列号：{unit.serial}"
                    if _chinese(text)
                    else f" Serial no. {unit.serial}"
                )
        body |= {"text": text, "customer": {"name": rng.choice(NAMES), "contact": contact}}
        out.append(("new", body))
    return out


def _chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)
