"""The pooled batch test's reference and spans (cloud/anomaly/pooled.py): a batch whose model has
little reference exposure is also compared with the rest of the fleet, batches that stand out
are no one's reference, and a 6-h span beside the 24-h one (an option, not the default) finds a
step sooner."""

from __future__ import annotations

import numpy as np

from cloud.anomaly.pooled import PooledShift

HOUR = 3600.0
WINDOW = 3 * HOUR
DAY = 24 * HOUR


class Windows:
    """Units' 3-h window levels (in units of a window's spread: healthy noise N(0, 1)), from
    which each round's shifts over a span of windows are the mean of the span's last windows,
    as ``DetectorBank.shifts(span)`` gives them; a unit's level may step up at a time."""

    def __init__(self, layout: dict[tuple[str, str], int], seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.devices = [f"{m}/{b}/{u:03d}" for (m, b), n in layout.items() for u in range(n)]
        self.where = {d: tuple(d.split("/")[:2]) for d in self.devices}
        self.steps: dict[str, tuple[float, float]] = {}  # device -> (from, size)
        self.levels = np.empty((len(self.devices), 0))
        self.closed = 0.0  # windows closed up to here

    def advance(self, ts: float) -> None:
        while self.closed + WINDOW <= ts:
            level = self.rng.normal(size=len(self.devices))
            for i, d in enumerate(self.devices):
                start, size = self.steps.get(d, (np.inf, 0.0))
                if self.closed >= start:  # the window lies after the step
                    level[i] += size
            self.levels = np.column_stack((self.levels, level))[:, -8:]
            self.closed += WINDOW

    def shifts(self, span: int) -> dict[str, tuple[list[str], np.ndarray]]:
        return {"cooling_decline": (self.devices, self.levels[:, -span:].mean(axis=1))}

    def batch_of(self, device: str) -> tuple[str, str] | None:
        return self.where.get(device)  # type: ignore[return-value]


def first_finding(units: Windows, pooled: PooledShift, days: float):
    ts = 0.0
    while ts <= days * DAY:
        units.advance(ts)
        if units.levels.shape[1] >= 8:  # a day of windows, as past learning
            shifts = {span: units.shifts(span) for span in pooled.spans}
            if found := pooled.update(ts, shifts, units.batch_of):
                return found[0]
        ts += HOUR
    return None


def few_reference_units(other_models: int, seed: int = 11) -> Windows:
    """Model M: batch D and one reference batch of 20 units; ``other_models`` other models of
    20 units each; three units of D step up far beyond the fleet at day 2.5."""
    layout = {("M", "D"): 20, ("M", "R"): 20}
    layout |= {(f"O{k}", f"C{k}"): 20 for k in range(other_models)}
    units = Windows(layout, seed)
    for u in range(3):
        units.steps[f"M/D/{u:03d}"] = (2.5 * DAY, 30.0)
    return units


def test_a_model_with_one_reference_batch_is_compared_with_the_fleet_too() -> None:
    """On the 24-h span, 20 reference units of the model over 1.5 days of history cannot make 3
    of 20 significant ((20 / 50)^3 > 0.01); the fleet's 80 units can, and the test says so."""
    found = first_finding(few_reference_units(other_models=3), PooledShift(spans=(8,)), days=4)
    assert found is not None and (found.model, found.batch) == ("M", "D")
    assert found.reference == "fleet" and found.reference_units == 80
    assert found.ts <= 2.5 * DAY + 2 * WINDOW  # once the step's windows are in the shifts
    assert set(found.shifts) == {f"M/D/{u:03d}" for u in range(3)}

    alone = first_finding(few_reference_units(other_models=0), PooledShift(spans=(8,)), days=4)
    assert alone is None or alone.ts > 2.5 * DAY + 2 * WINDOW  # the model's own reference only


def test_a_batch_that_stands_out_is_no_ones_reference() -> None:
    """A leak batch of another model with 10 units far beyond for a day: left in the fleet's
    rate, its exceedances would hide batch D's three; once it stands out it is left out."""
    units = few_reference_units(other_models=3)
    for u in range(10):
        units.steps[f"O0/C0/{u:03d}"] = (1.0 * DAY, 30.0)
    pooled = PooledShift()
    leak = first_finding(units, pooled, days=2)
    assert leak is not None and (leak.model, leak.batch) == ("O0", "C0")
    drifting = first_finding(units, pooled, days=4)  # the same fleet and test, run on
    assert drifting is not None and (drifting.model, drifting.batch) == ("M", "D")
    assert drifting.reference == "fleet" and drifting.reference_units == 80
    assert drifting.reference_beyond < 3  # the leak batch's ten are not in it
    assert drifting.ts <= 2.5 * DAY + 2 * WINDOW


def test_the_six_hour_span_finds_a_step_before_the_day_long_one() -> None:
    """Three units of a batch step up by 6 window spreads: their 6-h means are beyond the level
    once both of its windows lie after the step (8.5 of its spreads), their 24-h means only
    after three (a quarter of the step per window, 2.1 of its spreads)."""

    def steps() -> Windows:
        units = Windows({("M", f"B{b}"): 20 for b in range(4)}, seed=12)
        for u in range(3):
            units.steps[f"M/B0/{u:03d}"] = (3 * DAY, 6.0)
        return units

    both = first_finding(steps(), PooledShift(spans=(8, 2)), days=6)
    day_only = first_finding(steps(), PooledShift(spans=(8,)), days=6)
    assert both is not None and both.span_s == 6 * HOUR and both.batch == "B0"
    assert day_only is not None and day_only.batch == "B0"
    assert both.ts + WINDOW <= day_only.ts
    assert both.ts <= 3 * DAY + 3 * WINDOW


def test_both_spans_and_references_keep_a_healthy_fleet_quiet() -> None:
    """Five models of two batches each, 700 hourly rounds of healthy window levels (independent
    units: no batch-shared traits): no batch stands out with both spans and both references."""
    units = Windows({(f"M{m}", f"B{m}-{b}"): 15 for m in range(5) for b in range(2)}, seed=13)
    assert first_finding(units, PooledShift(spans=(8, 2)), days=29) is None
