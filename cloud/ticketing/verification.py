"""Closed-loop fix verification as a pure function: findings in, verdict out.

A fix names units and an ``effective_from`` (event time in the units' own data). Each fixed unit is

- **failed** when it reports the fault ACTIVE with ``ts > effective_from`` (detectors report a fault
  once per episode, so this is the fault standing again after the fix), or when its data runs more
  than ``window_s`` past ``effective_from`` (``last_seen_ts``) without it clearing;
- **cleared** when it reports the fault inactive with ``ts > effective_from`` (the detector found
  the indicator back at the unit's own baseline), or when it was not in the fault at
  ``effective_from`` at all (never affected, or recovered before: nothing to clear, and a later
  relapse still fails it as above);
- **waiting** otherwise.

The fix is verified when every unit is cleared, failed as soon as one unit failed, else pending.
The verdict depends only on the findings log and the units' last event times, never on the order
in which they arrived, so evaluating again is harmless (idempotent).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum


class UnitState(StrEnum):
    CLEARED = "cleared"
    WAITING = "waiting"
    FAILED = "failed"


class Outcome(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    FAILED = "failed"
    WITHDRAWN = "withdrawn"  # a person reopened the ticket while it was verifying


@dataclass(frozen=True, slots=True)
class UnitVerdict:
    device: str
    state: UnitState
    ts: float | None  # event time that decided it (the clearing or the relapse), if any
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {
            "device": self.device,
            "state": self.state.value,
            "ts": self.ts,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    units: tuple[UnitVerdict, ...]

    def count(self, state: UnitState) -> int:
        return sum(u.state is state for u in self.units)

    def summary(self) -> str:
        n = len(self.units)
        if self.outcome is Outcome.VERIFIED:
            return f"verified: {n}/{n} units back at baseline"
        failed = [u for u in self.units if u.state is UnitState.FAILED]
        if self.outcome is Outcome.FAILED:
            return f"not verified: {len(failed)}/{n} units failed: " + "; ".join(
                f"{u.device} {u.reason}" for u in failed
            )
        return f"verifying: {self.count(UnitState.CLEARED)}/{n} units back at baseline"


def judge_unit(
    device: str,
    findings: Iterable[tuple[float, bool]],
    last_seen_ts: float | None,
    effective_from: float,
    window_s: float,
) -> UnitVerdict:
    """The verdict on one unit from its findings ``(ts, active)`` for the ticket's fault."""
    ordered = sorted(findings)
    after = [(ts, active) for ts, active in ordered if ts > effective_from]
    relapse = next((ts for ts, active in after if active), None)
    if relapse is not None:
        return UnitVerdict(
            device, UnitState.FAILED, relapse, f"reported the fault at {relapse:.0f}"
        )
    cleared = next((ts for ts, active in after if not active), None)
    if cleared is not None:
        return UnitVerdict(device, UnitState.CLEARED, cleared, "fault cleared after the fix")
    before = [active for ts, active in ordered if ts <= effective_from]
    if not before or not before[-1]:
        return UnitVerdict(device, UnitState.CLEARED, None, "not in the fault when the fix applied")
    if last_seen_ts is not None and last_seen_ts - effective_from > window_s:
        hours = window_s / 3600.0
        return UnitVerdict(
            device, UnitState.FAILED, None, f"no clear within {hours:g} h of data after the fix"
        )
    return UnitVerdict(device, UnitState.WAITING, None, "waiting for the fault to clear")


def judge(
    devices: Sequence[str],
    findings: Mapping[str, Iterable[tuple[float, bool]]],
    last_seen: Mapping[str, float],
    effective_from: float,
    window_s: float,
) -> Verdict:
    """The verdict on a fix over ``devices``.

    >>> v = judge(["a", "b"], {"a": [(5.0, True), (20.0, False)]}, {"b": 30.0}, 10.0, 100.0)
    >>> v.outcome.value, v.summary()
    ('verified', 'verified: 2/2 units back at baseline')
    >>> judge(["a"], {"a": [(5.0, True)]}, {"a": 200.0}, 10.0, 100.0).outcome.value
    'failed'
    """
    units = tuple(
        judge_unit(d, findings.get(d, ()), last_seen.get(d), effective_from, window_s)
        for d in devices
    )
    if any(u.state is UnitState.FAILED for u in units):
        return Verdict(Outcome.FAILED, units)
    if all(u.state is UnitState.CLEARED for u in units):
        return Verdict(Outcome.VERIFIED, units)
    return Verdict(Outcome.PENDING, units)
