"""The static threshold rule users set up in general IoT platforms: the baseline qloop's batch
tickets are measured against.

A ThingsBoard-style device-profile alarm on a split air conditioner: per unit, *compressor on and
return − supply ΔT below* ``threshold_c`` *for* ``duration_s`` (an hour) raises a unit alarm
(:class:`DeltaTRule`); a batch alarm is raised when the ``min_units``-th (third) distinct unit of
a batch has alarmed (:class:`BatchAlarm`).

The condition is judged on every reading, as a duration condition is: a reading where it does
not hold (compressor off, ΔT at or above the threshold, a missing value) starts the count again,
and so does a gap between readings longer than ``max_gap_s`` (nothing was seen in between). The
alarm clears at the first reading that breaks the condition; the next full duration raises it
again.

Heat pumps heating blow air well above the return air, so ΔT is negative and the condition would
hold in every heating hour. A user whose units are heat pumps adds the mode to the condition; the
contract's telemetry has no mode field, so the rule takes a reading whose supply air is more than
``HEATING_MARGIN_K`` above the return air as heating, as qloop's ``cooling_decline`` does
(:func:`cloud.anomaly.cooling.cooling`), and a heating reading breaks the condition.

The threshold is one fixed number for every unit, model, climate and scenario — which is what
makes it a baseline. :data:`THRESHOLD_C` says how it was chosen.

No I/O and no clock: readings arrive a block at a time with their own timestamps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from cloud.anomaly.cooling import HEATING_MARGIN_K

# Chosen once, on the development fleet qloop's detectors were tuned on (the built-in `healthy`
# scenario, seeds 3000-3002: 300 units of three models, 3,150 judged device-days), as the highest
# threshold on a 0.5 °C grid whose false unit alarms stay within the false-alarm budget qloop is
# held to, 1 per 1,000 healthy device-days (``python -m evaluation.calibrate`` prints the rate at
# each threshold: 0 at 6.5 °C, 4.1 at 7 °C, 99 at 8 °C, 226 at 8.5 °C). Never set per scenario.
THRESHOLD_C = 6.5
# the thresholds a user tuning the rule tries (°C), and the false-alarm budget they tune it to
GRID_C = tuple(5.0 + 0.5 * k for k in range(11))
BUDGET_PER_1000 = 1.0
DURATION_S = 3600.0
MAX_GAP_S = 900.0
BATCH_MIN_UNITS = 3


def highest_within(rates: Mapping[float, float], budget: float = BUDGET_PER_1000) -> float | None:
    """The highest threshold whose false unit alarm rate (per 1,000 healthy device-days) is
    within ``budget``: a higher threshold finds a capacity loss sooner, so this is the most
    sensitive rule as quiet as qloop must be. None when no threshold is.

    >>> highest_within({6.5: 0.0, 7.0: 0.8, 7.5: 4.1})
    7.0
    """
    within = [t for t, rate in rates.items() if rate <= budget]
    return max(within) if within else None


class DeltaTRule:
    """One unit's alarm: compressor on and ``return_c − supply_c < threshold_c`` for
    ``duration_s``.

    >>> rule = DeltaTRule(threshold_c=8.0, duration_s=120.0)
    >>> rule.update([0, 60, 120, 180], [1, 1, 1, 1], [26.0] * 4, [19.0] * 4)
    [120.0]
    >>> rule.alarmed
    True
    >>> rule.update([240, 300], [0, 1], [26.0, 26.0], [20.0, 15.0])  # off, then ΔT 11 K
    []
    >>> rule.alarmed
    False
    """

    def __init__(
        self,
        threshold_c: float = THRESHOLD_C,
        duration_s: float = DURATION_S,
        max_gap_s: float = MAX_GAP_S,
    ) -> None:
        self.threshold_c = threshold_c
        self.duration_s = duration_s
        self.max_gap_s = max_gap_s
        self._reset()

    def _reset(self) -> None:
        self._since = math.nan  # when the condition began to hold (NaN: it does not)
        self._last_ts = math.nan
        self.alarmed = False

    def update(
        self,
        ts: Sequence[float],
        compressor_on: Sequence[float | None],
        return_c: Sequence[float | None],
        supply_c: Sequence[float | None],
    ) -> list[float]:
        """Judge a block of readings (in time order); the times at which the alarm was raised."""
        raised: list[float] = []
        for t, on, ret, sup in zip(ts, compressor_on, return_c, supply_c, strict=True):
            t = float(t)
            holds = (
                on is not None
                and ret is not None
                and sup is not None
                and on > 0.5
                and ret - sup < self.threshold_c  # NaN compares False: a missing value breaks it
                and sup - ret < HEATING_MARGIN_K  # heating, not a loss of cooling
            )
            if not holds or t - self._last_ts > self.max_gap_s:
                self._since = math.nan
                if not holds:
                    self.alarmed = False
            if holds and math.isnan(self._since):
                self._since = t
            self._last_ts = t
            if holds and not self.alarmed and t - self._since >= self.duration_s:
                self.alarmed = True
                raised.append(t)
        return raised


class BatchAlarm:
    """A batch's alarm: raised when the ``min_units``-th distinct unit of the batch has alarmed.

    >>> batch = BatchAlarm(min_units=2)
    >>> batch.update("u1", 10.0), batch.update("u1", 20.0), batch.update("u2", 30.0)
    (None, None, 30.0)
    >>> batch.raised_ts
    30.0
    """

    def __init__(self, min_units: int = BATCH_MIN_UNITS) -> None:
        self.min_units = min_units
        self._reset()

    def _reset(self) -> None:
        self._units: set[str] = set()
        self.raised_ts: float | None = None

    def update(self, unit: str, ts: float) -> float | None:
        """A unit alarm at ``ts``; the batch alarm's time if this one raises it."""
        self._units.add(unit)
        if self.raised_ts is None and len(self._units) >= self.min_units:
            self.raised_ts = ts
            return ts
        return None


def batch_alarms(
    unit_alarms: Iterable[tuple[float, str, str]], min_units: int = BATCH_MIN_UNITS
) -> dict[str, float]:
    """Each batch's alarm time from ``(ts, device, batch)`` unit alarms (any order)."""
    batches: dict[str, BatchAlarm] = {}
    out: dict[str, float] = {}
    for ts, device, batch in sorted(unit_alarms):
        raised = batches.setdefault(batch, BatchAlarm(min_units)).update(device, ts)
        if raised is not None:
            out[batch] = raised
    return out
