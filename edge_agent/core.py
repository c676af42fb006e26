"""The device's protocol logic with no I/O: samples in, contract messages out.

:class:`DeviceCore` numbers messages (``seq``), groups samples into telemetry blocks, and checks
local safety rules at every sample so a limit crossing leaves as an event at once instead of
waiting for the block. It owns no socket, file or clock: the caller passes the time (event time
``ts`` for the readings, ``now`` for how long a block has waited) and sends what comes back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from contract.protocol import Birth, Event, Message, Telemetry, Value


@dataclass(frozen=True, slots=True)
class Identity:
    device: str
    model: str
    batch: str
    serial: str
    firmware: str
    product: str = "air_conditioner"
    sample_period_s: float = 10.0


@dataclass(frozen=True, slots=True)
class SafetyRule:
    """``field`` crossing ``limit`` (above, or below when ``above`` is False) raises ``kind``.

    The rule fires once per crossing and re-arms only after the value is back on the safe side
    by ``rearm`` (hysteresis), so a value hovering at the limit does not flood the uplink.

    A motor's current is above its running limit for a moment at every start (the locked-rotor
    current), so an ``above`` rule may name a ``start_field`` (the compressor's on/off state):
    for ``blank_s`` seconds after that field turns on, readings are judged only against the
    instantaneous level ``limit * instant_factor``, as motor protection blocks its overcurrent
    element during a start. The start happened between the last reading with the field off and
    the first with it on; the blanking counts from the latter, so it covers at least ``blank_s``
    of the motor's real time since the start, and with any ``blank_s`` that first reading is
    blanked (at a coarse sampling period it may have been taken within a second of the start). A
    current still above the limit when the blanking ends (a stalled rotor, a real overload) trips
    at the first reading after it; one above ``limit * instant_factor`` trips at once, blanked or
    not. A device without the ``start_field`` among its fields has nothing to blank: every
    reading is judged against ``limit``.

    ``context`` names fields whose values at the tripping reading the event carries too, as
    optional keys of its payload (CONTRACTS.md §1 allows them; a field the device lacks, or a
    reading without a value, is left out). The built-in overcurrent rule carries the outdoor
    temperature: a compressor draws more the hotter it is outdoors, and the cloud tells a trip
    beyond the model's rated envelope from a unit's fault by it (``cloud/anomaly/envelope.py``).
    """

    kind: str
    field: str
    limit: float
    above: bool = True
    rearm: float = 0.5
    start_field: str | None = None
    blank_s: float = 0.0
    instant_factor: float = 4.0
    context: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.start_field is not None and not self.above:
            raise ValueError(f"{self.kind}: start_field needs a rule on a value above its limit")
        if not (math.isfinite(self.blank_s) and self.blank_s >= 0.0):
            raise ValueError(f"{self.kind}: blank_s must be a finite number >= 0")
        if not (math.isfinite(self.instant_factor) and self.instant_factor >= 1.0):
            raise ValueError(f"{self.kind}: instant_factor must be a finite number >= 1")

    def crossed(self, x: float) -> bool:
        return x > self.limit if self.above else x < self.limit

    def crossed_instantly(self, x: float) -> bool:
        """Above the instantaneous level, which no start's current reaches."""
        return x > self.limit * self.instant_factor

    def safe(self, x: float) -> bool:
        return x < self.limit - self.rearm if self.above else x > self.limit + self.rearm


# A 3.5 kW split unit draws about 4-6 A when cooling; breakers and compressor protectors sit
# near 10 A. Return air above 45 °C means the unit is cooking, not cooling.
# A fixed-speed compressor starting direct on line draws its locked-rotor current, 4-6 times
# its running current (20-36 A here), which decays to the running current within 0.1-0.5 s as
# the rotor comes up to speed; a current meter's reading is an RMS over its window (typically
# one mains-synchronous second), so a start shows in readings taken up to about 1.5 s after
# it. Hence the overcurrent rule's start blanking of 2 s (the short end of the start-blocking
# and definite-time delays of motor protection relays, 0.1-10 s, and well under the 4-10 s a
# class-10 overload allows a locked rotor): at 1 Hz the first two readings of a run, at any
# coarser period only the first. The instantaneous level, 4 x the limit (40 A), is above the
# locked-rotor current of a unit this limit protects (running <= 6 A, locked rotor <= 36 A),
# as a breaker's magnetic trip sits above a motor's starting current.
OVERCURRENT_START_BLANK_S = 2.0
OVERCURRENT_INSTANT_FACTOR = 4.0
DEFAULT_SAFETY_RULES: tuple[SafetyRule, ...] = (
    SafetyRule(
        "overcurrent",
        "current_a",
        10.0,
        rearm=1.0,
        start_field="compressor_on",
        blank_s=OVERCURRENT_START_BLANK_S,
        instant_factor=OVERCURRENT_INSTANT_FACTOR,
        context=("ambient_c", "return_c"),
    ),
    SafetyRule("overheat", "return_c", 45.0, rearm=2.0),
)


def clean_value(x: object) -> Value:
    """A sensor's value as the contract wants it: a finite float, or None.

    Numbers of any numeric type (``int``, ``bool``, numpy scalars, ``Decimal``) become floats;
    strings, bytes, containers, NaN, infinities and integers too large for a float become None.
    """
    if x is None or isinstance(x, (str, bytes, bytearray)):
        return None
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if not hasattr(type(x), "__float__"):
        return None
    try:
        f = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, ArithmeticError):
        return None
    return f if math.isfinite(f) else None


_ONLY_FLOATS = frozenset((float,))


@dataclass(slots=True)
class _OpenBlock:
    rows: list[tuple[Value, ...]] = field(default_factory=list)
    opened_at: float = 0.0


class DeviceCore:
    """One device's message numbering, blocking and safety checks.

    ``fields`` names the columns of every sample, ``ts`` first. A block is closed when it has
    ``block_rows`` rows or its first row has waited ``block_max_age_s`` (measured in the
    caller's ``now``).
    """

    def __init__(
        self,
        identity: Identity,
        fields: Sequence[str],
        *,
        block_rows: int = 60,
        block_max_age_s: float = 10.0,
        rules: Sequence[SafetyRule] = DEFAULT_SAFETY_RULES,
        next_seq: int = 0,
    ) -> None:
        if not fields or fields[0] != "ts":
            raise ValueError("fields must start with 'ts'")
        self.identity = identity
        self.fields = tuple(fields)
        self.block_rows = max(1, block_rows)
        self.block_max_age_s = block_max_age_s
        self.rules = tuple(r for r in rules if r.field in self.fields)
        self.next_seq = next_seq
        self._rule_index = [self.fields.index(r.field) for r in self.rules]
        # A rule's start field (-1: none, or not among the fields: no blanking), whether it was
        # on at the last reading that had it, and the ts of the first reading of its current run.
        self._start_index = [
            self.fields.index(r.start_field) if r.start_field in self.fields else -1
            for r in self.rules
        ]
        # (name, index) of each rule's context fields that the device has
        self._context = [
            [(f, self.fields.index(f)) for f in r.context if f in self.fields] for r in self.rules
        ]
        self._running = [False] * len(self.rules)
        self._run_from = [-math.inf] * len(self.rules)
        self._tripped = [False] * len(self.rules)
        self._block = _OpenBlock()
        self.bad_values = 0  # values that were not finite numbers and went out as null

    def birth(self, ts: float, extra: Mapping[str, object] | None = None) -> Birth:
        i = self.identity
        return Birth(
            i.device,
            i.product,
            i.model,
            i.batch,
            i.serial,
            i.firmware,
            i.sample_period_s,
            ts,
            dict(extra or {}),
        )

    def _take_seq(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        return seq

    def sample(self, row: Sequence[object], now: float | None = None) -> list[Message]:
        """Add one sample (aligned with ``fields``); returns events and any completed block."""
        if len(row) != len(self.fields):
            raise ValueError(f"sample has {len(row)} values for {len(self.fields)} fields")
        # Fast path (the simulator's 10,000 units, any driver that hands over plain floats):
        # a row of Python floats whose sum is finite has no NaN or infinity in it, so it is
        # already clean. Anything else (None, ints, numpy scalars, strings, a non-finite sum)
        # takes the value-by-value path below, which gives the same result for such rows.
        if _ONLY_FLOATS.issuperset(map(type, row)) and math.isfinite(sum(row)):  # type: ignore[arg-type]
            clean: tuple[Value, ...] = tuple(row)  # type: ignore[arg-type]
            ts: float = clean[0]  # type: ignore[assignment]
        else:
            ts_or_none = clean_value(row[0])
            if ts_or_none is None:
                raise ValueError("sample without a timestamp")
            ts = ts_or_none
            clean = tuple(clean_value(x) for x in row)
            self.bad_values += sum(
                1 for x, c in zip(row, clean, strict=True) if c is None and x is not None
            )
        out: list[Message] = []
        tripped = self._tripped
        for k, rule in enumerate(self.rules):
            blanked = False
            j = self._start_index[k]
            if j >= 0:
                on = clean[j]
                if on is not None:
                    if on and not self._running[k]:
                        self._run_from[k] = ts
                    self._running[k] = bool(on)
                blanked = self._running[k] and ts - self._run_from[k] < rule.blank_s
            x = clean[self._rule_index[k]]
            if x is None:
                continue
            if not tripped[k]:
                if rule.crossed(x) and (not blanked or rule.crossed_instantly(x)):
                    tripped[k] = True
                    seen = {f: clean[j] for f, j in self._context[k] if clean[j] is not None}
                    seq = self._take_seq()
                    out.append(Event(self.identity.device, seq, ts, rule.kind, x, rule.limit, seen))
            elif rule.safe(x):
                tripped[k] = False
        rows = self._block.rows
        if not rows:
            self._block.opened_at = ts if now is None else now
        rows.append(clean)
        if len(rows) >= self.block_rows:
            out.append(self._close())
        return out

    @property
    def open_rows(self) -> list[tuple[Value, ...]]:
        """The rows of the block not yet closed (read only): the agent stages them durably."""
        return self._block.rows

    def resume(self, rows: Sequence[Sequence[Value]], now: float) -> None:
        """Start the open block with rows staged by an earlier run (after a crash or restart);
        its age counts from ``now``. Safety rules are not re-checked: they were at sampling."""
        if not rows:
            return
        if not self._block.rows:
            self._block.opened_at = now
        self._block.rows.extend(tuple(r) for r in rows)

    def due(self, now: float) -> list[Telemetry]:
        """The open block, if its first row has waited ``block_max_age_s`` by ``now``."""
        if self._block.rows and now - self._block.opened_at >= self.block_max_age_s:
            return [self._close()]
        return []

    def flush(self) -> list[Telemetry]:
        """The open block, whatever its age (at shutdown)."""
        return [self._close()] if self._block.rows else []

    def _close(self) -> Telemetry:
        rows, self._block = self._block.rows, _OpenBlock()
        return Telemetry(self.identity.device, self._take_seq(), self.fields, tuple(rows))
