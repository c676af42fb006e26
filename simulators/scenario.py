"""What a simulated fleet looks like: batches of units, their faults, the climate, the clock.

A scenario is a frozen value, loaded from TOML (a file, or a built-in by name) and checked
strictly: unknown keys, wrong types and out-of-range values raise :class:`ScenarioError` naming
the file and the key, so a typo in a scenario never silently runs a different experiment.

Durations (every key ending in ``_s``) are seconds, or strings with units such as ``"3d"``,
``"12h"``, ``"1d12h"``, ``"90m"``. ``start_ts`` is Unix seconds or a TOML/ISO 8601 date-time with
an offset. Example::

    name = "mini"
    seed = 7
    start_ts = 2024-07-01T00:00:00+08:00
    duration_s = "2d"
    sample_period_s = 60

    [climate]
    outdoor_mean_c = 30.0

    [[batches]]
    batch = "B20240517"
    model = "KFR-35GW"
    units = 20

    [[batches.faults]]
    kind = "refrigerant_leak"
    share = 0.5
    onset_after_s = ["1d", "3d"]
    magnitude = 0.25          # final capacity loss fraction
    ramp_s = "3d"

Fault kinds and what ``magnitude`` means for each are in :data:`simulators.faults.FAULT_KINDS`.

Optional behaviour of healthy units (none of it is a fault, none of it is in the ground truth)::

    block_rows = 12            # readings per telemetry block the units send (default: the caller's)

    [[regions]]                # units spread over climate regions by share (default: [climate])
    name = "north"
    share = 0.5
    outdoor_mean_c = 27.0      # any [climate] key but utc_offset_h; the rest from [climate]
    daily_amplitude_c = 7.0

    [users]
    setpoint_changes_per_day = 1.5   # a user changes the setpoint this often on average
    setpoint_range_c = [18.0, 28.0]  # ... within this range
    setpoint_step_c = 3.0            # ... by up to this much (0.5 °C steps)
    heating_below_c = 16.0           # heat pumps: heat when the last day was cooler (±2 °C)
    heat_setpoint_range_c = [19.0, 23.0]  # ... at a heating setpoint in this range
    use_hours = [[18.0, 24.0], [21.0, 7.0]]  # each user runs the unit in one of these hours

    [compressor]
    inrush = true              # the start's locked-rotor current shows in the current reading

How the messages reach the cloud in ``qloop eval`` (default: live, one stream)::

    [delivery]
    connections = 4            # the units spread over this many connections ...
    lag_s = "6h"               # ... each this much event time behind the one before
    replay = true              # sent after the fact: the worker's clock is past every reading
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from contract.errors import QloopError
from simulators.faults import FAULT_KINDS, STUCK_SENSORS
from simulators.models import MODELS


class ScenarioError(QloopError, ValueError):
    """A scenario that cannot be run; the message says where and why."""


@dataclass(frozen=True)
class FaultSpec:
    """A fault that hits ``share`` of a batch's units, each at a random time in a window.

    ``onset_after_s`` and ``repair_after_s`` count seconds from the scenario's start;
    ``repair_after_s`` (a field repair campaign) must come after the onset window.
    ``sensor`` names the stuck sensor for ``stuck_sensor`` ("" = return_c or supply_c at random).
    """

    kind: str
    share: float
    onset_after_s: tuple[float, float]
    magnitude: float
    ramp_s: float = 0.0
    repair_after_s: float | None = None
    sensor: str = ""


@dataclass(frozen=True)
class BatchSpec:
    batch: str
    model: str
    units: int
    faults: tuple[FaultSpec, ...] = ()
    firmware: str = "2.3.0"


@dataclass(frozen=True)
class Climate:
    """Outdoor air: daily cycle plus a slow weather drift (Ornstein-Uhlenbeck) for the region,
    and optionally the season's trend of the mean."""

    outdoor_mean_c: float = 30.0
    daily_amplitude_c: float = 5.0  # half the day-night swing
    peak_hour: float = 15.0  # local hour of the daily maximum
    weather_sigma_c: float = 2.0  # stationary standard deviation of the drift
    weather_tau_s: float = 3 * 86400.0  # how long a hot or cool spell lasts
    utc_offset_h: float = 8.0  # local time = UTC + this (schedules and the sun follow local time)
    # the season: the mean moves this much per day from the scenario's start (spring into summer
    # > 0, autumn < 0); 0 keeps the climate stationary
    trend_c_per_day: float = 0.0


@dataclass(frozen=True)
class Region:
    """A climate region and the share of the fleet's units installed there."""

    name: str
    share: float
    climate: Climate


@dataclass(frozen=True)
class Users:
    """How users handle their units: setpoint changes at random times (a Poisson process per
    unit), each by 0.5 to ``setpoint_step_c`` °C up or down, kept within ``setpoint_range_c``.

    ``heating_below_c``: the units are heat pumps and their users switch them to heating when
    the weather turns cool: each user heats while the outdoor temperature they have felt over
    the last day (its exponential mean) is below their own threshold, drawn within ±2 °C of this
    value, and cools again once it is 2 °C above it; the heating setpoint is drawn from
    ``heat_setpoint_range_c``. None (the default): the units only cool.

    ``use_hours``: the users switch their units on and off by the clock: each user runs theirs
    within one of these local-time spans ``(on, off)`` in hours (``off`` before ``on`` runs past
    midnight), picked at random, each end moved by up to ``USE_SPREAD_H``; outside it the unit
    is switched off (compressor and fan off; it still reports). Empty (the default): the units
    are always on and their thermostats alone run them."""

    setpoint_changes_per_day: float = 0.0
    setpoint_range_c: tuple[float, float] = (18.0, 28.0)
    setpoint_step_c: float = 3.0
    heating_below_c: float | None = None
    heat_setpoint_range_c: tuple[float, float] = (19.0, 23.0)
    use_hours: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class Delivery:
    """How the units' messages reach the cloud (``qloop eval``): over ``connections``
    connections, unit ``i`` on connection ``i % connections``, connection ``c`` delivering
    ``c * lag_s`` of event time behind the first (a backfill or gateway replay, where a second
    of lag between connections is hours of data); ``replay``: after the fact, the worker's clock
    past the fleet's last reading, rather than live at the fleet's event time."""

    connections: int = 1
    lag_s: float = 0.0
    replay: bool = False


@dataclass(frozen=True)
class Scenario:
    name: str
    seed: int
    start_ts: float
    duration_s: float
    sample_period_s: float
    batches: tuple[BatchSpec, ...]
    speed: float = 0.0  # simulated seconds per wall second; 0 = as fast as possible
    climate: Climate = field(default_factory=Climate)
    sensor_dropout: float = 0.0  # chance that one sensor of one row gives no value (NaN)
    device_prefix: str = "ac"
    description: str = ""
    # readings per telemetry block the units send (their firmware's); None: the caller's choice
    block_rows: int | None = None
    regions: tuple[Region, ...] = ()  # () = every unit in `climate`
    users: Users = field(default_factory=Users)
    inrush: bool = False  # compressor starts show their locked-rotor current (aircon.py)
    delivery: Delivery = field(default_factory=Delivery)

    @property
    def units(self) -> int:
        return sum(b.units for b in self.batches)

    @property
    def end_ts(self) -> float:
        return self.start_ts + self.duration_s


# every scenario file shipped in simulators/scenarios/ is a built-in, by its file name
BUILTIN_SCENARIOS: tuple[str, ...] = tuple(
    sorted(
        f.name.removesuffix(".toml")
        for f in (resources.files("simulators") / "scenarios").iterdir()
        if f.name.endswith(".toml")
    )
)

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([dhms])")
_UNIT_S = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")


def load_scenario(path_or_name: str | Path) -> Scenario:
    """A scenario from a TOML file, or a built-in one by name (see ``BUILTIN_SCENARIOS``)."""
    text_name = str(path_or_name)
    path = Path(path_or_name)
    if path.suffix == ".toml" or path.exists() or "/" in text_name:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ScenarioError(f"{text_name}: cannot read scenario file ({e.strerror})") from e
        return parse_scenario(text, source=text_name)
    if text_name not in BUILTIN_SCENARIOS:
        raise ScenarioError(
            f"unknown scenario {text_name!r}: give a .toml file or one of "
            + ", ".join(BUILTIN_SCENARIOS)
        )
    resource = resources.files("simulators") / "scenarios" / f"{text_name}.toml"
    return parse_scenario(resource.read_text(encoding="utf-8"), source=f"{text_name}.toml")


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """A scenario from TOML text; ``source`` names it in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{source}: not valid TOML: {e}") from e
    return _Reader(source).scenario(data)


def duration_s(value: Any, where: str = "duration") -> float:
    """Seconds from a number or a string like ``"1d12h"``; raises ScenarioError otherwise."""
    if isinstance(value, bool):
        raise ScenarioError(f"{where}: expected seconds or a duration like '3d', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        compact = value.replace(" ", "")
        parts = _DURATION_RE.findall(compact)
        if not parts or "".join(n + u for n, u in parts) != compact:
            raise ScenarioError(f"{where}: cannot read duration {value!r} (use e.g. '3d', '1d12h')")
        seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
    else:
        raise ScenarioError(f"{where}: expected seconds or a duration like '3d', got {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ScenarioError(f"{where}: must be a finite duration >= 0, got {value!r}")
    return seconds


class _Reader:
    """Turns parsed TOML into dataclasses, checking as it goes, with the key path in errors."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {where}: {message}")

    def table(self, value: Any, where: str, allowed: set[str], required: set[str]) -> dict:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a table, got {type(value).__name__}")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.fail(where, f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")
        missing = sorted(required - set(value))
        if missing:
            raise self.fail(where, f"missing key(s) {missing}")
        return value

    def number(self, value: Any, where: str, lo: float = -math.inf, hi: float = math.inf) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f"expected a number, got {value!r}")
        if not math.isfinite(value) or not lo <= value <= hi:
            raise self.fail(where, f"must be in [{lo}, {hi}], got {value!r}")
        return float(value)

    def duration(self, value: Any, where: str) -> float:
        return duration_s(value, f"{self.source}: {where}")

    def text(self, value: Any, where: str, pattern: re.Pattern[str] | None = None) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(where, f"expected a non-empty string, got {value!r}")
        if pattern is not None and not pattern.match(value):
            raise self.fail(where, f"{value!r} must match {pattern.pattern}")
        return value

    def timestamp(self, value: Any, where: str) -> float:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError as e:
                raise self.fail(where, f"cannot read date-time {value!r}") from e
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise self.fail(where, "date-time needs an offset (e.g. Z or +08:00)")
            return value.timestamp()
        return self.number(value, where, 0.0)

    def scenario(self, data: dict) -> Scenario:
        top = {"name", "seed", "start_ts", "duration_s", "sample_period_s", "batches"}
        extra = {"speed", "climate", "sensor_dropout", "device_prefix", "description"}
        extra |= {"block_rows", "regions", "users", "compressor", "delivery"}
        self.table(data, "top level", top | extra, top)
        seed = data["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise self.fail("seed", f"expected an integer >= 0, got {seed!r}")
        duration = self.duration(data["duration_s"], "duration_s")
        period = self.duration(data["sample_period_s"], "sample_period_s")
        if duration <= 0 or period <= 0:
            raise self.fail("duration_s/sample_period_s", "must be > 0")
        batches_raw = data["batches"]
        if not isinstance(batches_raw, list) or not batches_raw:
            raise self.fail("batches", "expected at least one [[batches]] table")
        batches = tuple(self.batch(b, f"batches[{i}]") for i, b in enumerate(batches_raw))
        names = [b.batch for b in batches]
        if len(set(names)) != len(names):
            raise self.fail("batches", f"batch names must be unique, got {names}")
        prefix = self.text(data.get("device_prefix", "ac"), "device_prefix", _NAME_RE)
        block_rows = data.get("block_rows")
        if block_rows is not None and (
            isinstance(block_rows, bool) or not isinstance(block_rows, int) or block_rows < 1
        ):
            raise self.fail("block_rows", f"expected an integer >= 1, got {block_rows!r}")
        climate = self.climate(data.get("climate", {}))
        compressor = self.table(data.get("compressor", {}), "compressor", {"inrush"}, set())
        inrush = compressor.get("inrush", False)
        if not isinstance(inrush, bool):
            raise self.fail("compressor.inrush", f"expected true or false, got {inrush!r}")
        return Scenario(
            name=self.text(data["name"], "name"),
            seed=seed,
            start_ts=self.timestamp(data["start_ts"], "start_ts"),
            duration_s=duration,
            sample_period_s=period,
            batches=batches,
            speed=self.number(data.get("speed", 0.0), "speed", 0.0),
            climate=climate,
            sensor_dropout=self.number(data.get("sensor_dropout", 0.0), "sensor_dropout", 0, 0.5),
            device_prefix=prefix,
            description=str(data.get("description", "")),
            block_rows=block_rows,
            regions=self.regions(data.get("regions", []), climate),
            users=self.users(data.get("users", {})),
            inrush=inrush,
            delivery=self.delivery(data.get("delivery", {})),
        )

    def delivery(self, data: Any) -> Delivery:
        self.table(data, "delivery", set(Delivery.__dataclass_fields__), set())
        n = data.get("connections", 1)
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1000:
            raise self.fail("delivery.connections", f"expected an integer 1-1000, got {n!r}")
        replay = data.get("replay", False)
        if not isinstance(replay, bool):
            raise self.fail("delivery.replay", f"expected true or false, got {replay!r}")
        return Delivery(n, self.duration(data.get("lag_s", 0.0), "delivery.lag_s"), replay)

    def regions(self, data: Any, climate: Climate) -> tuple[Region, ...]:
        if not isinstance(data, list):
            raise self.fail("regions", "expected [[regions]] tables")
        regions = []
        for i, raw in enumerate(data):
            where = f"regions[{i}]"
            keys = set(Climate.__dataclass_fields__) - {"utc_offset_h"}
            self.table(raw, where, keys | {"name", "share"}, {"name", "share"})
            values = {k: v for k, v in raw.items() if k not in ("name", "share")}
            regions.append(
                Region(
                    self.text(raw["name"], f"{where}.name", _NAME_RE),
                    self.number(raw["share"], f"{where}.share", 0.0, 1.0),
                    self.climate(values, where, climate),
                )
            )
        if regions and abs(sum(r.share for r in regions) - 1.0) > 1e-6:
            raise self.fail("regions", "the shares must add up to 1")
        return tuple(regions)

    def users(self, data: Any) -> Users:
        keys = set(Users.__dataclass_fields__)
        self.table(data, "users", keys, set())
        rate = data.get("setpoint_changes_per_day", 0.0)
        rate = self.number(rate, "users.setpoint_changes_per_day", 0.0, 48.0)
        step = self.number(data.get("setpoint_step_c", 3.0), "users.setpoint_step_c", 0.5, 10.0)
        span = self.span(data.get("setpoint_range_c", [18.0, 28.0]), "users.setpoint_range_c")
        below = data.get("heating_below_c")
        if below is not None:
            below = self.number(below, "users.heating_below_c", -10.0, 25.0)
        heat = self.span(data.get("heat_setpoint_range_c", [19.0, 23.0]),
                         "users.heat_setpoint_range_c")  # fmt: skip
        hours = data.get("use_hours", [])
        if not isinstance(hours, list):
            raise self.fail("users.use_hours", f"expected a list of [on, off] hours, got {hours!r}")
        use = []
        for i, pair in enumerate(hours):
            where = f"users.use_hours[{i}]"
            if not isinstance(pair, list) or len(pair) != 2:
                raise self.fail(where, f"expected [on, off] in hours of the day, got {pair!r}")
            on, off = (self.number(v, f"{where}[{j}]", 0.0, 24.0) for j, v in enumerate(pair))
            if on % 24.0 == off % 24.0:
                raise self.fail(where, "on and off at the same hour: leave it out to run all day")
            use.append((on, off))
        return Users(rate, span, step, below, heat, tuple(use))

    def span(self, span: Any, where: str) -> tuple[float, float]:
        """A setpoint range ``[lowest, highest]``, within the controllers' 16-30 °C."""
        if not isinstance(span, list) or len(span) != 2:
            raise self.fail(where, f"expected [lowest, highest], got {span!r}")
        lo = self.number(span[0], f"{where}[0]", 16.0, 30.0)
        return lo, self.number(span[1], f"{where}[1]", lo, 30.0)

    def climate(self, data: Any, where: str = "climate", base: Climate | None = None) -> Climate:
        default = base or Climate()
        names = set(Climate.__dataclass_fields__)
        self.table(data, where, names, set())
        values: dict[str, float] = {}
        for key, value in data.items():
            where_key = f"{where}.{key}"
            if key.endswith("_s"):
                values[key] = self.duration(value, where_key)
                if values[key] <= 0:
                    raise self.fail(where_key, "must be > 0")
            elif key == "peak_hour":
                values[key] = self.number(value, where_key, 0.0, 24.0)
            elif key == "utc_offset_h":
                values[key] = self.number(value, where_key, -12.0, 14.0)
            elif key == "outdoor_mean_c":
                values[key] = self.number(value, where_key, -30.0, 50.0)
            elif key == "trend_c_per_day":
                values[key] = self.number(value, where_key, -2.0, 2.0)
            else:
                values[key] = self.number(value, where_key, 0.0, 30.0)
        climate = Climate(**{**default.__dict__, **values})
        return climate

    def batch(self, data: Any, where: str) -> BatchSpec:
        allowed = {"batch", "model", "units", "faults", "firmware"}
        self.table(data, where, allowed, {"batch", "model", "units"})
        model = self.text(data["model"], f"{where}.model")
        if model not in MODELS:
            raise self.fail(f"{where}.model", f"unknown model {model!r}; known: {sorted(MODELS)}")
        units = data["units"]
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise self.fail(f"{where}.units", f"expected an integer >= 1, got {units!r}")
        faults_raw = data.get("faults", [])
        if not isinstance(faults_raw, list):
            raise self.fail(f"{where}.faults", "expected [[batches.faults]] tables")
        faults = tuple(self.fault(f, f"{where}.faults[{i}]") for i, f in enumerate(faults_raw))
        return BatchSpec(
            batch=self.text(data["batch"], f"{where}.batch", _NAME_RE),
            model=model,
            units=units,
            faults=faults,
            firmware=self.text(data.get("firmware", "2.3.0"), f"{where}.firmware"),
        )

    def fault(self, data: Any, where: str) -> FaultSpec:
        allowed = {"kind", "share", "onset_after_s", "magnitude", "ramp_s", "repair_after_s"}
        allowed.add("sensor")
        self.table(data, where, allowed, {"kind", "share", "onset_after_s"})
        kind = self.text(data["kind"], f"{where}.kind")
        if kind not in FAULT_KINDS:
            raise self.fail(f"{where}.kind", f"unknown kind {kind!r}; known: {sorted(FAULT_KINDS)}")
        spec = FAULT_KINDS[kind]
        share = self.number(data["share"], f"{where}.share", 0.0, 1.0)
        window = data["onset_after_s"]
        if isinstance(window, int | float | str) and not isinstance(window, bool):
            window = [window, window]
        if not isinstance(window, list) or len(window) != 2:
            raise self.fail(
                f"{where}.onset_after_s", f"expected [earliest, latest], got {window!r}"
            )
        onset = (
            self.duration(window[0], f"{where}.onset_after_s[0]"),
            self.duration(window[1], f"{where}.onset_after_s[1]"),
        )
        if onset[0] > onset[1]:
            raise self.fail(f"{where}.onset_after_s", f"earliest after latest: {window!r}")
        lo, hi = spec.magnitude_range
        if "magnitude" not in data and lo != hi:
            raise self.fail(f"{where}.magnitude", f"required for {kind}: {spec.magnitude}")
        if kind in ("offline", "clock_jump"):
            magnitude = self.duration(data["magnitude"], f"{where}.magnitude")
            if not lo <= magnitude <= hi:
                raise self.fail(f"{where}.magnitude", f"must be in [{lo}, {hi}] s")
        else:
            magnitude = self.number(data.get("magnitude", lo), f"{where}.magnitude", lo, hi)
        ramp = self.duration(data.get("ramp_s", 0.0), f"{where}.ramp_s")
        repair = data.get("repair_after_s")
        if repair is not None:
            repair = self.duration(repair, f"{where}.repair_after_s")
            if repair <= onset[1]:
                raise self.fail(f"{where}.repair_after_s", "must come after the onset window")
        sensor = data.get("sensor", "")
        if sensor and (kind != "stuck_sensor" or sensor not in STUCK_SENSORS):
            raise self.fail(
                f"{where}.sensor", f"only for stuck_sensor, one of {list(STUCK_SENSORS)}"
            )
        return FaultSpec(kind, share, onset, magnitude, ramp, repair, sensor)
