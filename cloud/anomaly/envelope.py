"""A model's rated operating envelope: a protection trip beyond it is the design's limit, not a
unit's fault.

An air conditioner is rated to run up to an outdoor temperature: 43 °C for the T1 class of
ISO 5151 / GB/T 7725, which the standards' maximum-operating test checks (the unit runs at it
without its protection tripping); T3 units are rated to 52 °C. Beyond that, a fixed-speed
compressor's current rises with the condensing pressure until its protection trips, on a sound
unit as on a faulty one. The same test sets the indoor side: air entering the indoor unit at
32 °C (dry bulb), in every climate class. A room far hotter than that (a unit switched on after
a summer day off: 33-35 °C in the simulated ``evenings`` fleets, S16) raises the evaporating
pressure, the capacity and with them the current: a sound 5-kW unit pulling such a room down
drew 10.1-10.3 A against its 10 A protection.

Such a trip is a real event, and it is kept (journal and InfluxDB's ``event`` measurement, where
engineers query it), but it says nothing against the unit: a heat wave would otherwise open an
urgent overcurrent ticket for every unit of a model that ran in it. A unit with a failing
compressor trips at ordinary temperatures too, and those trips are findings as before.

The outdoor and return air temperatures of a trip are the ones the event carries (the edge adds
its readings at the trip, ``SafetyRule.context``; optional payload keys). An event without them
is judged as before: qloop does not guess a temperature from an older reading.

Settings: ``max_outdoor_c`` for every model (T1 by default) and ``by_model`` for models rated
otherwise, ``max_indoor_c`` (32 °C); ``kinds`` are the events the envelope applies to
(overcurrent: the current follows the temperatures; an overheating room does not).

>>> env = Envelope(by_model={"KFR-72LW/T3": 52.0})
>>> env.beyond("overcurrent", "KFR-35GW", {"ambient_c": 46.0})
'outdoor 46.0 °C > 43.0 °C'
>>> env.beyond("overcurrent", "KFR-35GW", {"ambient_c": 41.0}) is None
True
>>> env.beyond("overcurrent", "KFR-50GW", {"ambient_c": 35.0, "return_c": 34.4})
'return air 34.4 °C > 32.0 °C'
>>> env.beyond("overcurrent", "KFR-50GW", {"ambient_c": 35.0, "return_c": 31.5}) is None
True
>>> env.beyond("overcurrent", "KFR-72LW/T3", {"ambient_c": 46.0}) is None
True
>>> env.beyond("overheat", "KFR-35GW", {"ambient_c": 46.0}) is None
True
>>> env.beyond("overcurrent", "KFR-35GW", {}) is None
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

T1_MAX_OUTDOOR_C = 43.0  # ISO 5151 / GB/T 7725 climate class T1: the maximum operating test
MAX_INDOOR_C = 32.0  # ... its indoor side (dry bulb of the air entering the indoor unit)


@dataclass(frozen=True, slots=True)
class Envelope:
    max_outdoor_c: float = T1_MAX_OUTDOOR_C
    by_model: Mapping[str, float] = field(default_factory=dict)
    kinds: frozenset[str] = frozenset({"overcurrent"})
    outdoor_field: str = "ambient_c"
    max_indoor_c: float = MAX_INDOOR_C
    indoor_field: str = "return_c"

    def rated_max_c(self, model: str | None) -> float:
        """The highest outdoor temperature ``model`` is rated to run at."""
        return self.by_model.get(model or "", self.max_outdoor_c)

    def outdoor(self, context: Mapping[str, object]) -> float | None:
        """The outdoor temperature an event's ``context`` (its optional keys) carries, if a
        finite number."""
        return _number(context.get(self.outdoor_field))

    def indoor(self, context: Mapping[str, object]) -> float | None:
        """The return air temperature an event's ``context`` carries, if a finite number."""
        return _number(context.get(self.indoor_field))

    def beyond(self, kind: str, model: str | None, context: Mapping[str, object]) -> str | None:
        """Why a ``kind`` event whose ``context`` (the event's optional keys) lies beyond
        ``model``'s rating does (the temperature past it); None when within it, not known, or
        not a kind the envelope applies to."""
        if kind not in self.kinds:
            return None
        outdoor, rated = self.outdoor(context), self.rated_max_c(model)
        if outdoor is not None and outdoor > rated:
            return f"outdoor {outdoor:.1f} °C > {rated:.1f} °C"
        indoor = self.indoor(context)
        if indoor is not None and indoor > self.max_indoor_c:
            return f"return air {indoor:.1f} °C > {self.max_indoor_c:.1f} °C"
        return None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def parse_models(text: str) -> dict[str, float]:
    """Models rated otherwise, from ``MODEL=°C`` pairs separated by commas.

    >>> parse_models("KFR-72LW/T3=52, KFR-26GW=46")
    {'KFR-72LW/T3': 52.0, 'KFR-26GW': 46.0}
    >>> parse_models("KFR-72LW")
    Traceback (most recent call last):
    ValueError: 'KFR-72LW': expected MODEL=°C, e.g. KFR-72LW/T3=52
    """
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        model, sep, value = part.partition("=")
        try:
            c = float(value) if sep and model.strip() else math.nan
        except ValueError:
            c = math.nan
        if not math.isfinite(c):
            raise ValueError(f"{part!r}: expected MODEL=°C, e.g. KFR-72LW/T3=52")
        out[model.strip()] = c
    return out
