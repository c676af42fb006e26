"""The people's half of ``qloop demo``: complaints from several channels, filed through the API
once the fleet's telemetry is in.

The customers are invented but their units are real units of the simulated fleet (named by the
serial each unit announced in its birth message): the owner of a leaking unit calls the hotline
with the procedure's own example complaint and then writes a review of the same problem (a
repeat), the owner of a healthy unit says the same thing at a store (the data says normal), a
third complains to a platform about a hot plug (safety), a dealer reports damaged deliveries and
an e-mail reports a dead remote. Each answer is printed: its ticket, classification, routing,
the batch ticket it joined and what the unit's telemetry says.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from simulators.fleet import Fleet, UnitInfo
from simulators.scenario import load_scenario

PROCEDURE = "空调使用1个月后，制冷效果明显下降，出风口温度18℃(设定16℃)，噪音比初期增大。"


@dataclass(frozen=True)
class Filed:
    status: int
    body: dict[str, Any]


def complaints(leaking: UnitInfo | None, healthy: UnitInfo | None) -> list[dict[str, Any]]:
    """The demo's feedback bodies (CONTRACTS.md §4.1), in the order they are filed."""
    out: list[dict[str, Any]] = []
    if leaking is not None:
        customer = {"name": "张先生", "contact": "13800138000"}
        out.append(
            {
                "channel": "hotline",
                "text": PROCEDURE,
                "customer": customer,
                "model": leaking.model,
                "serial": leaking.serial,
                "demand": "repair",
            }
        )
        out.append(
            {
                "channel": "ecommerce",
                "text": "买了才两个月就不怎么制冷了，出风口18度，客服让等，差评！",
                "customer": {"name": "张**", "contact": "138 0013 8000"},
                "model": leaking.model,
            }
        )
    if healthy is not None:
        out.append(
            {
                "channel": "store",
                "text": "制冷效果不好，设定16度，感觉出风不够凉。",
                "customer": {"name": "李女士", "contact": "13900001111"},
                "serial": healthy.serial,
                "demand": "repair",
            }
        )
    out += [
        {
            "channel": "platform",
            "text": "12315投诉：空调插头发烫，闻到焦味，担心起火，要求上门检测并更换。",
            "customer": {"name": "王女士", "contact": "13700002222"},
            "demand": "replace",
        },
        {
            "channel": "dealer",
            "text": "本批到货的5台KFR-35GW室内机面板有划痕，两台外壳有凹陷。",
            "customer": {"name": "华东经销商", "contact": "dealer-east@example.com"},
            "demand": "replace",
        },
        {
            "channel": "email",
            "text": "The remote control stopped working after a week; new batteries did not help.",
            "customer": {"name": "Sam Lee", "contact": "sam@example.com"},
        },
    ]
    return out


def pick_units(scenario: str, truth: list[dict[str, Any]]) -> tuple[UnitInfo | None, ...]:
    """A unit whose cooling the simulator degraded and a unit it left alone, of one model."""
    units = Fleet(load_scenario(scenario)).units
    faulty = {f["device"] for f in truth if f["expected_fault"] == "cooling_decline"}
    leaking = next((u for u in units if u.device in faulty), None)
    model = leaking.model if leaking else None
    bad_batches = {f["batch"] for f in truth}
    healthy = next(
        (u for u in units if u.model == model and u.batch not in bad_batches and u.device),
        None,
    )
    return leaking, healthy


def post(base: str, token: str, body: dict[str, Any]) -> Filed:
    req = urllib.request.Request(
        f"{base}/api/v1/feedback",
        data=json.dumps(body, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return Filed(r.status, json.load(r))
    except urllib.error.HTTPError as e:
        return Filed(e.code, json.load(e))


def describe(body: dict[str, Any], filed: Filed) -> str:
    """One complaint's outcome in two or three lines."""
    t = filed.body
    if filed.status not in (200, 201):
        return f"  {body['channel']:<9} -> HTTP {filed.status}: {t.get('detail')}"
    c = t.get("classification") or {}
    what = c.get("category", t.get("category")) + (f"/{c['fault']}" if c.get("fault") else "")
    outcome = f"repeat #{t['repeats']} of" if filed.status == 200 else "opened"
    lines = [
        f"  {body['channel']:<9} -> {outcome} {t['id']}: {what}, severity {t['severity']}"
        f" {t['priority']} -> {', '.join(t['departments'])}"
        + (" (needs triage)" if c.get("needs_triage") else "")
    ]
    if t.get("parent"):
        lines.append(f"              joined batch ticket {t['parent']}")
    telemetry = (t.get("evidence") or {}).get("telemetry")
    if telemetry:
        lines.append(f"              {telemetry['text']}")
    return "\n".join(lines)


def file_complaints(
    base: str, token: str, scenario: str, truth: list[dict[str, Any]]
) -> dict[str, Filed]:
    """File the demo's complaints and print what became of each; the answers by channel."""
    leaking, healthy = pick_units(scenario, truth)
    answers = {}
    print("\nqloop demo: complaints from people arrive on several channels:")
    for body in complaints(leaking, healthy):
        answers[body["channel"]] = filed = post(base, token, body)
        print(describe(body, filed), flush=True)
    return answers
