"""Simulator scenarios for tests, written as the TOML a user would write (``simulators/
scenario.py`` documents every key), from one builder instead of a text per test."""

from __future__ import annotations

from collections.abc import Mapping

START = "2024-07-01T00:00:00+08:00"


def _value(v: object) -> str:
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return repr(v)


def _lines(values: Mapping[str, object]) -> str:
    return "".join(f"{k} = {_value(v)}\n" for k, v in values.items())


def fault(kind: str, share: float, onset_after_s: str | list[str], **params: object) -> str:
    """A ``[[batches.faults]]`` table of the batch written before it."""
    return "[[batches.faults]]\n" + _lines(
        {"kind": kind, "share": share, "onset_after_s": onset_after_s, **params}
    )


def batch(name: str, units: int, *faults: str, model: str = "KFR-35GW") -> str:
    """A ``[[batches]]`` table with its faults."""
    return (
        "[[batches]]\n" + _lines({"batch": name, "model": model, "units": units}) + "".join(faults)
    )


def scenario(
    name: str,
    seed: int | str,
    duration_s: str,
    *batches: str,
    sample_period_s: int = 60,
    start_ts: str = START,
    climate: Mapping[str, float] | None = None,
    **top: object,
) -> str:
    """A whole scenario: the top-level keys, an optional ``[climate]`` table, the batches.
    ``seed`` may be a placeholder such as ``"{seed}"`` for a template filled in later."""
    head = f'name = "{name}"\n' + _lines(top) + f"seed = {seed}\nstart_ts = {start_ts}\n"
    head += _lines({"duration_s": duration_s, "sample_period_s": sample_period_s})
    if climate:
        head += "[climate]\n" + _lines(climate)
    return head + "".join(batches)
