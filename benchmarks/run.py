"""``qloop bench``: run the benchmarks, write JSON, append a dated table to BENCHMARKS.md.

Every figure is printed beside a baseline measured in the same run (see ``benchmarks.common``).
``--quick`` runs each benchmark at tiny sizes (seconds, figures meaningless): the test suite runs
it so the benchmarks cannot rot. The full run takes 30 minutes or more, most of it the
10,000-unit simulated day (``scale_day``) and the accuracy scenarios (``accuracy``, a few
minutes); ``--only NAME`` runs one.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.accuracy import bench_accuracy
from benchmarks.alarm import bench_alarm
from benchmarks.api import bench_api
from benchmarks.common import ROOT, Result, append_section, markdown
from benchmarks.detectors import bench_detectors
from benchmarks.edge_drain import bench_edge_drain
from benchmarks.edge_footprint import bench_edge_footprint
from benchmarks.embedded_store import bench_embedded_store
from benchmarks.feedback import bench_feedback
from benchmarks.ingest import bench_ingest
from benchmarks.judging import bench_judging
from benchmarks.memory import bench_memory
from benchmarks.report import bench_report
from benchmarks.scale import bench_scale, bench_scale_day

BENCHES: dict[str, Callable[[bool], Result]] = {
    "detectors": bench_detectors,
    "judging": bench_judging,
    "memory": bench_memory,
    "api": bench_api,
    "alarm": bench_alarm,
    "ingest": bench_ingest,
    "scale": bench_scale,
    "scale_day": bench_scale_day,
    "edge_footprint": bench_edge_footprint,
    "edge_drain": bench_edge_drain,
    "embedded_store": bench_embedded_store,
    "accuracy": bench_accuracy,
    "report": bench_report,
    "feedback": bench_feedback,
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qloop bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    p.add_argument(
        "--only", action="append", choices=sorted(BENCHES), help="run only this one (repeatable)"
    )
    p.add_argument("--json", help="write the results as JSON to this file")
    p.add_argument("--no-append", action="store_true", help="do not append to BENCHMARKS.md")
    p.add_argument("--markdown", default=str(ROOT / "BENCHMARKS.md"), help="the file to append to")
    return p


def run(names: Sequence[str], quick: bool) -> list[Result]:
    results = []
    for name in names:
        print(f"qloop bench: {name}{' (quick)' if quick else ''} ...", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        r = BENCHES[name](quick)
        r.seconds = time.monotonic() - t0
        for f in r.figures:
            print(
                f"  {f.name}: {f.value:,.2f} {f.unit} | {f.baseline_name}: "
                f"{f.baseline:,.2f} {f.unit} | ratio {f.ratio:.3g}",
                file=sys.stderr,
                flush=True,
            )
        results.append(r)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    names = args.only or list(BENCHES)
    started = datetime.now(UTC)
    results = run(names, args.quick)
    command = (
        "qloop bench"
        + (" --quick" if args.quick else "")
        + "".join(f" --only {n}" for n in args.only or ())
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "started": started.isoformat(),
                    "quick": args.quick,
                    "results": [r.to_json() for r in results],
                },
                indent=2,
                default=str,
            )
        )
    if not args.no_append:
        when = f"{started:%Y-%m-%d %H:%M} UTC"
        append_section(
            Path(args.markdown), markdown(results, quick=args.quick, when=when, command=command)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
