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
    """

    kind: str
    field: str
    limit: float
    above: bool = True
    rearm: float = 0.5

    def crossed(self, x: float) -> bool:
        return x > self.limit if self.above else x < self.limit

    def safe(self, x: float) -> bool:
        return x < self.limit - self.rearm if self.above else x > self.limit + self.rearm


# A 3.5 kW split unit draws about 4-6 A when cooling; breakers and compressor protectors sit
# near 10 A. Return air above 45 °C means the unit is cooking, not cooling.
DEFAULT_SAFETY_RULES: tuple[SafetyRule, ...] = (
    SafetyRule("overcurrent", "current_a", 10.0, rearm=1.0),
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
            x = clean[self._rule_index[k]]
            if x is None:
                continue
            if not tripped[k]:
                if rule.crossed(x):
                    tripped[k] = True
                    out.append(
                        Event(self.identity.device, self._take_seq(), ts, rule.kind, x, rule.limit)
                    )
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
