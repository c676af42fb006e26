"""Where readings come from: small implementations of :class:`edge_agent.agent.SensorSource`.

A source has a ``fields`` tuple (the column names, without ``ts``) and ``read(ts)``, which
returns one value per field for the sample taken at ``ts``. A source may return None, NaN or
garbage for a value, or raise: the agent sends garbage as null and counts a raising read as a
source error, then carries on. So sources stay simple and let failures show.

* :class:`CsvSource` replays a recording, in real time or accelerated.
* :class:`CommandSource` runs a command per sample and parses its ``key=value`` output: the
  glue to real hardware (a vendor tool, ``sensors``, a Modbus or serial reader script).
* :class:`SysfsSource` reads numbers from files, as Linux hwmon exposes sensors
  (``/sys/class/hwmon/hwmon0/temp1_input`` holds millidegrees: ``scale = 0.001``).
* :class:`simulators.source.SimulatedUnitSource` is one simulated air conditioner.
"""

from __future__ import annotations

import bisect
import csv
import math
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

TIME_COLUMNS = ("ts", "timestamp", "time")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


class CsvSource:
    """Replay a CSV recording: a time column (``ts``, ``timestamp`` or ``time``, Unix seconds)
    and one column per field.

    The recording is laid against the agent's clock at the first read: a sample at agent time
    ``ts`` gets the recorded row in effect at ``t0 + (ts - first_ts) * speed`` (the last row at
    or before it), so ``speed = 1`` replays in real time and ``speed = 60`` plays an hour in a
    minute. At the end of the recording the replay starts again (``loop``) or every read raises
    :class:`EOFError` (the agent then sends nulls and counts source errors). Empty or
    non-numeric cells give None.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        speed: float = 1.0,
        loop: bool = True,
        fields: Sequence[str] | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.path = Path(path)
        self.speed = speed
        self.loop = loop
        with self.path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            time_col = next((h for h in header if h in TIME_COLUMNS), None)
            if time_col is None:
                raise ValueError(f"{self.path}: no time column ({', '.join(TIME_COLUMNS)})")
            names = [h for h in header if h != time_col] if fields is None else list(fields)
            missing = [n for n in names if n not in header]
            if missing:
                raise ValueError(f"{self.path}: no column {', '.join(missing)}")
            ti, cols = header.index(time_col), [header.index(n) for n in names]
            times: list[float] = []
            rows: list[tuple[float | None, ...]] = []
            for n, line in enumerate(reader, start=2):
                if not line or len(line) < len(header):
                    continue
                t = _number(line[ti])
                if t is None or not math.isfinite(t):
                    raise ValueError(f"{self.path}:{n}: time {line[ti]!r} is not a number")
                if times and t < times[-1]:
                    raise ValueError(f"{self.path}:{n}: time goes backwards")
                times.append(t)
                rows.append(tuple(_number(line[c]) for c in cols))
        if not rows:
            raise ValueError(f"{self.path}: no rows")
        self.fields = tuple(names)
        self._times = times
        self._rows = rows
        self._span = times[-1] - times[0]
        self._first_ts: float | None = None

    def read(self, ts: float) -> Sequence[object]:
        if self._first_ts is None:
            self._first_ts = ts
        offset = (ts - self._first_ts) * self.speed
        if offset > self._span:
            if not self.loop:
                raise EOFError(f"{self.path}: end of the recording")
            # one recorded period past the end is the first row again
            period = self._span / max(1, len(self._times) - 1)
            offset = offset % (self._span + period) if period > 0 else 0.0
        i = bisect.bisect_right(self._times, self._times[0] + offset) - 1
        return self._rows[max(0, i)]


def parse_key_values(text: str) -> dict[str, str]:
    """``key=value`` pairs from text: one or more per line, separated by spaces, ``,`` or
    ``;``; ``#`` starts a comment. Later keys win."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        for token in line.replace(",", " ").replace(";", " ").split():
            key, sep, value = token.partition("=")
            if sep and key:
                out[key.strip()] = value.strip()
    return out


class CommandSource:
    """Run ``command`` at every sample and parse ``key=value`` pairs from its standard output.

    ``fields`` lists the keys to report, in order; a key the command did not print gives None,
    a value that is not a number gives None (the agent counts it as a bad value). A command that
    fails (non-zero exit, timeout after ``timeout_s``, not found) raises, and the agent sends a
    row of nulls. ``command`` is a list of arguments or a string split like a shell would (no
    shell features; run ``sh -c '...'`` for pipes).

    Example: ``command = "/usr/local/bin/read-ac --port /dev/ttyUSB0"`` printing
    ``return_c=24.5 supply_c=12.1 current_a=4.20``.
    """

    def __init__(
        self,
        command: str | Sequence[str],
        fields: Sequence[str],
        *,
        timeout_s: float = 5.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.command = shlex.split(command) if isinstance(command, str) else list(command)
        if not self.command:
            raise ValueError("empty command")
        self.fields = tuple(fields)
        self.timeout_s = timeout_s
        self.env = dict(env) if env is not None else None

    def read(self, ts: float) -> Sequence[object]:
        done = subprocess.run(
            self.command,
            capture_output=True,
            timeout=self.timeout_s,
            check=False,
            env=self.env,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip()[-200:]
            raise RuntimeError(f"{self.command[0]} exited with {done.returncode}: {err}")
        values = parse_key_values(done.stdout.decode(errors="replace"))
        return [_number(values[f]) if f in values else None for f in self.fields]


class SysfsSource:
    """Read one number per field from a file, times ``scale`` (Linux hwmon and other sysfs
    sensors). A file that cannot be read or parsed gives None for its field."""

    def __init__(
        self, files: Mapping[str, str | Path], scale: Mapping[str, float] | None = None
    ) -> None:
        if not files:
            raise ValueError("no sensor files")
        self.files = {name: Path(p) for name, p in files.items()}
        self.scale = dict(scale or {})
        self.fields = tuple(self.files)

    def read(self, ts: float) -> Sequence[object]:
        out: list[float | None] = []
        for name, path in self.files.items():
            try:
                x = _number(path.read_text().strip())
            except OSError:
                x = None
            out.append(None if x is None else x * self.scale.get(name, 1.0))
        return out
