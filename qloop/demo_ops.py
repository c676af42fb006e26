"""What an operator would check in ``qloop demo``: which test opened each batch ticket, and that
the worker lost nothing on the way.

After the fleet's data is in, the demo reads the worker's own counters from its Prometheus
endpoint (``qloop cloud run --metrics-port``): messages and readings taken in, duplicates, dead
letters by reason and lost seqs — "nothing lost" is a figure to read, not an assumption. Then one
unit of the first batch ticket as ``GET /api/v1/devices/{device}`` shows it: its batch, its active
faults and its own lost seqs.
"""

from __future__ import annotations

import urllib.request
from collections import defaultdict
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from qloop.demo_loop import Api


def scrape(url: str) -> dict[str, float]:
    """Every sample of a Prometheus endpoint, summed over its labels: ``{name: value}``."""
    with urllib.request.urlopen(url, timeout=10) as r:
        body = r.read().decode()
    totals: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            totals[sample.name] += sample.value
    return dict(totals)


def _opened_by(ticket: dict[str, Any]) -> str:
    test = str((ticket.get("evidence") or {}).get("opened_by") or "")
    if test.startswith("peer levels"):
        return "the peer level test: its units short of the model's other batches from the start"
    if test.startswith("pooled"):
        return "the pooled test: its units drifting together, before each alarmed alone"
    return "the count of units whose own detector alarmed" if test else "—"


def print_operations(api: Api, metrics_url: str, batch_tickets: list[dict[str, Any]]) -> None:
    """The worker's counters, how each batch ticket opened, and one unit of the first."""
    m = scrape(metrics_url)
    print(f"\nqloop demo: the worker's own counters ({metrics_url}):")
    print(
        f"    {m.get('qloop_worker_messages_total', 0):,.0f} messages,"
        f" {m.get('qloop_worker_readings_total', 0):,.0f} readings,"
        f" {m.get('qloop_worker_duplicates_total', 0):,.0f} duplicates,"
        f" {m.get('qloop_worker_dead_letters_total', 0):,.0f} dead letters,"
        f" {m.get('qloop_worker_lost_seqs', 0):,.0f} lost seqs"
        f" ({m.get('qloop_worker_devices_with_lost_seqs', 0):,.0f} units)"
    )
    print(
        f"    batch tests: {m.get('qloop_worker_batch_findings_total', 0):,.0f} findings; the peer"
        f" level test moved {m.get('qloop_worker_peer_moves_total', 0):,.0f} units' baselines up"
        f" to their peers' ({m.get('qloop_worker_peer_early_ends_total', 0):,.0f} of them named"
        " while they learned, their learning ended early)"
    )
    details = [api.call("GET", f"/tickets/{t['id']}") for t in batch_tickets]
    for detail in details:
        print(f"    {detail['id']} (batch {detail['batch']}) was opened by {_opened_by(detail)}")
    if not details:
        return
    units = [u["device"] for u in details[0]["evidence"].get("devices", []) if "device" in u]
    if units:
        unit = api.call("GET", f"/devices/{units[0]}")
        faults = ", ".join(f["fault"] for f in unit.get("active_faults", [])) or "none active"
        print(
            f"    a unit of {details[0]['id']}, GET /api/v1/devices/{unit['device']}:"
            f" batch {unit['batch']}, {faults}, {unit.get('lost_seqs', 0)} lost seqs"
        )
