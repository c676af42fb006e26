#!/usr/bin/env python3
"""Run the generic streaming detector over a NAB data folder and score it with NAB's score.py.

Usage::

    .venv/bin/python scripts/nab_eval.py [NAB_DIR] [--out DIR] [--threshold T] [--sweep]
    .venv/bin/python scripts/nab_eval.py [NAB_DIR] --cv [--out DIR]

``NAB_DIR`` (default ``../shared/nab`` relative to the repository root) holds ``data/`` and
``score.py``. Every ``data/<category>/<file>.csv`` is scored with a fresh
:class:`~cloud.anomaly.generic.StreamingAnomalyDetector` into ``OUT/<category>/<file>.csv``
(default ``bench-results/nab``, git-ignored),
then ``python3 NAB_DIR/score.py OUT --threshold T`` (T defaults to the detector's
``DEFAULT_THRESHOLD``) is run and its JSON printed. ``--sweep`` also prints the score with
the threshold swept on the same files (NAB's optimistic procedure), for comparison only.

``--cv`` runs the cross-validation that chose the detector's design instead
(:mod:`evaluation.nab_cv`: the pre-declared grid, leave-one-file-out and leave-one-family-out,
results under ``OUT`` (default ``bench-results/nab-cv``)) and prints its tables.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cloud.anomaly.generic import DEFAULT_THRESHOLD, StreamingAnomalyDetector  # noqa: E402
from evaluation import nab_cv  # noqa: E402


def run_score(nab: Path, results: Path, threshold: float | None) -> str:
    """Run NAB's score.py on ``results`` and return its JSON output."""
    cmd = ["python3", str(nab / "score.py"), str(results)]
    if threshold is not None:
        cmd += ["--threshold", str(threshold)]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("nab", nargs="?", type=Path, default=REPO.parent / "shared" / "nab")
    ap.add_argument("--out", type=Path, help="results folder")
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    ap.add_argument("--sweep", action="store_true", help="also report the swept threshold")
    ap.add_argument("--cv", action="store_true", help="cross-validate the design grid instead")
    args = ap.parse_args(argv)
    if args.cv:
        out = args.out or REPO / "bench-results" / "nab-cv"
        print(nab_cv.markdown(nab_cv.evaluate(args.nab, out)))
        return 0
    args.out = args.out or REPO / "bench-results" / "nab"
    start = time.perf_counter()
    rows = nab_cv.score_folder(args.nab / "data", args.out, StreamingAnomalyDetector)
    elapsed = time.perf_counter() - start
    print(f"scored {rows} rows in {elapsed:.1f} s into {args.out}", file=sys.stderr)
    print(run_score(args.nab, args.out, args.threshold))
    if args.sweep:
        print(run_score(args.nab, args.out, None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
