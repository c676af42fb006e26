"""The edge's overcurrent rule on a simulated fleet at 1 Hz: compressor starts read over the
limit for a second (the locked-rotor current) and are not overcurrents; a compressor that
really draws too much is still reported."""

from __future__ import annotations

from dataclasses import replace

from contract.protocol import Event
from edge_agent.core import SafetyRule
from simulators.fleet import Fleet
from simulators.runner import FleetEdge
from simulators.scenario import FaultSpec, load_scenario

HOURS = 2


def overcurrents(fleet: Fleet, plain: bool = False) -> tuple[list[Event], int]:
    """The overcurrent events of ``HOURS`` of the fleet through its units' edge cores, and the
    number of current readings over a unit's limit. ``plain``: the rule without its start
    blanking (one reading over the limit is an event)."""
    edge = FleetEdge(fleet, 1.0)
    if plain:
        for core in edge.cores:
            (rule,) = [r for r in core.rules if r.kind == "overcurrent"]
            unblanked = SafetyRule(rule.kind, rule.field, rule.limit, rule.above, rule.rearm)
            core.rules = tuple(unblanked if r is rule else r for r in core.rules)
    limits = [next(r.limit for r in c.rules if r.kind == "overcurrent") for c in edge.cores]
    current = edge.cores[0].fields.index("current_a")
    events: list[Event] = []
    over = 0

    def send(_unit: int, msg: object) -> None:
        if isinstance(msg, Event) and msg.kind == "overcurrent":
            events.append(msg)

    sc = fleet.scenario
    for k in range(1, HOURS * 3600 + 1):
        edge.sample(sc.start_ts + k, send)
        over += sum(
            (c.open_rows[-1][current] or 0.0) > lim
            for c, lim in zip(edge.cores, limits, strict=True)
            if c.open_rows
        )
    return events, over


def test_starts_at_1_hz_are_not_overcurrents_but_a_real_one_is() -> None:
    sc = replace(load_scenario("onehz-healthy"), duration_s=HOURS * 3600.0)
    events, over = overcurrents(Fleet(sc))
    assert over >= 5, "starts of the 5 kW units read over their limit at 1 Hz"
    assert events == []
    plain, _ = overcurrents(Fleet(sc), plain=True)
    assert len(plain) >= 5, "a rule judging every reading trips on those starts"
    fault = FaultSpec("compressor_overcurrent", 1.0, (0.0, 0.0), 14.0)
    faulty = replace(sc, batches=tuple(replace(b, faults=(fault,)) for b in sc.batches))
    events, _ = overcurrents(Fleet(faulty))
    assert {e.device for e in events} == {u.device for u in Fleet(faulty).units}
