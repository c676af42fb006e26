"""Score a ``timestamp,value`` CSV in the Numenta Anomaly Benchmark (NAB) results format.

:func:`score_csv` reads rows ``timestamp,value`` (a header line is optional; timestamps are
``YYYY-MM-DD HH:MM:SS[.ffffff]`` or unix seconds), feeds each value to a
:class:`~cloud.anomaly.generic.StreamingAnomalyDetector` (or another :class:`StreamScorer`)
and writes
``timestamp,value,anomaly_score`` rows in the same order, one per input row, which is what
NAB's ``score.py`` reads. Empty or unparsable *values* (``""``, ``nan``) are scored 0.0;
a row whose timestamp cannot be parsed or whose column count is wrong raises ``ValueError``
naming the line. Blank lines are skipped. Pure: the caller opens the files (``qloop score``).

>>> import io
>>> out = io.StringIO()
>>> score_csv(io.StringIO("timestamp,value\\n2014-04-01 00:00:00,1.5\\n"), out)
1
>>> out.getvalue().splitlines()
['timestamp,value,anomaly_score', '2014-04-01 00:00:00,1.5,0.000000']
"""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime
from typing import Protocol, TextIO

from cloud.anomaly.generic import StreamingAnomalyDetector

__all__ = ["StreamScorer", "parse_timestamp", "score_csv"]


class StreamScorer(Protocol):
    """What :func:`score_csv` needs of a detector: a score in [0, 1] per value, and its alarm
    threshold (:class:`~cloud.anomaly.generic.StreamingAnomalyDetector` and the NAB baselines
    in ``cloud/anomaly`` all have this shape)."""

    threshold: float

    def score_one(self, ts: float, value: float | None) -> float: ...


def parse_timestamp(text: str) -> float:
    """Unix seconds from ``"2014-04-01 00:00:00"`` (UTC assumed, ISO forms too) or a number."""
    text = text.strip()
    try:
        ts = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(ts):
            raise ValueError(f"timestamp is not finite: {text!r}")
        return ts
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"unrecognised timestamp {text!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _parse_value(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan  # a gap: scored 0.0, not learned


def score_csv(reader: TextIO, writer: TextIO, detector: StreamScorer | None = None) -> int:
    """Score every ``timestamp,value`` row of ``reader`` into ``writer``; return the row count.

    Raises ``ValueError("line N: ...")`` on a row with the wrong number of columns or an
    unparsable timestamp. Rows already written stay written (the output is streamed).
    """
    det = detector if detector is not None else StreamingAnomalyDetector()
    out = csv.writer(writer, lineterminator="\n")
    out.writerow(["timestamp", "value", "anomaly_score"])
    count = 0
    for line_no, row in enumerate(csv.reader(reader), start=1):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if line_no == 1 and row[0].strip().lower() == "timestamp":
            continue
        if len(row) != 2:
            raise ValueError(f"line {line_no}: expected 2 columns 'timestamp,value', got {row!r}")
        stamp, raw_value = row[0].strip(), row[1].strip()
        try:
            ts = parse_timestamp(stamp)
        except ValueError as exc:
            raise ValueError(f"line {line_no}: {exc}") from None
        score = det.score_one(ts, _parse_value(raw_value))
        out.writerow([stamp, raw_value, f"{score:.6f}"])
        count += 1
    return count
