#!/usr/bin/env python3
"""Run the generic streaming detector over a NAB data folder and score it with NAB's score.py.

Usage::

    .venv/bin/python scripts/nab_eval.py [NAB_DIR] [--out DIR] [--threshold T] [--sweep]

``NAB_DIR`` (default ``../shared/nab`` relative to the repository root) holds ``data/`` and
``score.py``. Every ``data/<category>/<file>.csv`` is scored with a fresh
:class:`~cloud.anomaly.generic.StreamingAnomalyDetector` into ``OUT/<category>/<file>.csv``
(default ``bench-results/nab``, git-ignored),
then ``python3 NAB_DIR/score.py OUT --threshold T`` (T defaults to the detector's
``DEFAULT_THRESHOLD``) is run and its JSON printed. ``--sweep`` also prints the score with
the threshold swept on the same files (NAB's optimistic procedure), for comparison only.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cloud.anomaly.generic import DEFAULT_THRESHOLD  # noqa: E402
from cloud.anomaly.nab import score_csv  # noqa: E402


def score_folder(data: Path, out: Path) -> int:
    """Score every CSV under ``data`` into the same relative path under ``out``; return rows."""
    rows = 0
    for src in sorted(data.glob("*/*.csv")):
        dst = out / src.parent.name / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        with src.open(newline="") as reader, dst.open("w", newline="") as writer:
            rows += score_csv(reader, writer)
    return rows


def run_score(nab: Path, results: Path, threshold: float | None) -> str:
    """Run NAB's score.py on ``results`` and return its JSON output."""
    cmd = ["python3", str(nab / "score.py"), str(results)]
    if threshold is not None:
        cmd += ["--threshold", str(threshold)]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("nab", nargs="?", type=Path, default=REPO.parent / "shared" / "nab")
    ap.add_argument(
        "--out", type=Path, default=REPO / "bench-results" / "nab", help="results folder"
    )
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    ap.add_argument("--sweep", action="store_true", help="also report the swept threshold")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    rows = score_folder(args.nab / "data", args.out)
    elapsed = time.perf_counter() - start
    print(f"scored {rows} rows in {elapsed:.1f} s into {args.out}", file=sys.stderr)
    print(run_score(args.nab, args.out, args.threshold))
    if args.sweep:
        print(run_score(args.nab, args.out, None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
