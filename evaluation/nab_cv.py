"""Choose the generic detector's design by cross-validation across NAB's development files.

The grid (:data:`GRID`) is declared here, before any run: the generic detector at its current
settings, at two other thresholds and at a window of 1,000 (warm-up 144), and three methods
with a published NAB record on data nobody tuned them on (relative entropy, KNN CAD, windowed
Gaussian; KNN CAD joined the grid after its first run, the rule below did not change).
Every candidate is a complete detector, its alarm threshold included, and is scored at that
threshold only (no sweep).

Procedure (``python -m evaluation.nab_cv [NAB_DIR]`` or ``scripts/nab_eval.py --cv``):

1. Every candidate scores every ``data/<category>/<file>.csv`` once with a fresh detector
   (:func:`score_folder`). Detectors learn nothing across files, so one run per file serves
   every fold.
2. Per candidate and file, NAB's own ``score.py`` (loaded from ``NAB_DIR`` as a module: its
   ``load`` and ``raw_at``, the code its command line runs) gives the file's raw score at the
   candidate's threshold (standard profile). NAB's raw score is a sum over files, so the raw
   score of any set of files is the sum of theirs and normalises as ``score.py`` does:
   ``100 * (raw + fn * k) / ((tp + fn) * k)`` for ``k`` windows. A set of files without a
   window (``artificialNoAnomaly``) has no normalised score (``score.py`` would divide by
   zero); such a fold reports its false alarms and raw cost instead.
3. Folds: leave one file out (15) and leave one family out (3: artificialNoAnomaly,
   artificialWithAnomaly, realAWSCloudwatch). In each fold the candidate with the best score on
   the training files alone is chosen (a tie goes to the earlier candidate in :data:`GRID`,
   where the published methods come first) and the held-out files are scored with it.
4. Reported: each fold's choice and held-out score; mean, standard deviation, minimum and
   maximum over the folds that have a window; and the pooled cross-validated score, NAB's
   score of all held-out files together (each at its own fold's choice), which is comparable to
   the in-sample score of one detector over the whole split.

Rule for the shipped default, declared with the grid: the candidate chosen most often over the
leave-one-file-out folds (a tie goes to the better pooled score), unless a candidate with a
published record scores, as a fixed choice, within one standard error of it on the pooled
score; then the published one. The standard error is that of the sum of the per-file
differences between the two (``sqrt(n) * std`` of the differences of each file's contribution
to the pooled score).

What this cannot see: the generic detector's design was developed on these same files before
this procedure existed, so its scores here are optimistic in a way no fold removes; only
files outside the split measure that.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import math
import statistics
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType

from cloud.anomaly.generic import StreamingAnomalyDetector
from cloud.anomaly.knn_cad import KnnCad
from cloud.anomaly.nab import StreamScorer, score_csv
from cloud.anomaly.relative_entropy import RelativeEntropy
from cloud.anomaly.windowed_gaussian import WindowedGaussian

REPO = Path(__file__).resolve().parent.parent
DEFAULT_NAB = REPO.parent / "shared" / "nab"
PROFILE = "standard"


@dataclass(frozen=True)
class Candidate:
    """One complete detector design: how to build it, and its published NAB record if any."""

    name: str
    make: Callable[[], StreamScorer]
    published: float | None = None  # NAB v1.1 full corpus, standard profile
    note: str = ""


#: The pre-declared grid; published methods first (they win ties).
GRID: tuple[Candidate, ...] = (
    Candidate("relative_entropy", RelativeEntropy, 54.6, "Wang et al. 2011; W=52, 5 levels"),
    Candidate("knn_cad", KnnCad, 58.0, "Burnaev & Ishimtsev 2016; 19 values, k=27, 0.9965"),
    Candidate("windowed_gaussian", WindowedGaussian, 39.6, "1,000 values; threshold 0.999"),
    Candidate(
        "windowed_gaussian_t99999",
        lambda: WindowedGaussian(threshold=0.99999),
        None,
        "1,000 values; threshold 0.99999",
    ),
    Candidate("generic", StreamingAnomalyDetector, None, "current: window 2000, threshold 0.5"),
    Candidate(
        "generic_t04", lambda: StreamingAnomalyDetector(threshold=0.4), None, "threshold 0.4"
    ),
    Candidate(
        "generic_t06", lambda: StreamingAnomalyDetector(threshold=0.6), None, "threshold 0.6"
    ),
    Candidate(
        "generic_w1000",
        lambda: StreamingAnomalyDetector(window=1000, warmup=144),
        None,
        "window 1000, warm-up 144",
    ),
)


@dataclass(frozen=True)
class FileScore:
    """One candidate's result on one file at its own threshold."""

    raw: float  # NAB raw score (standard profile)
    windows: int  # labelled windows in the file
    false_alarms: int  # alarm rows outside every window, after the probation period


@dataclass(frozen=True)
class Fold:
    held_out: tuple[str, ...]
    chosen: str
    train_score: float
    raw: float
    windows: int
    false_alarms: int

    @property
    def score(self) -> float | None:
        return normalised(self.raw, self.windows)


_WEIGHTS = {"tp": 1.0, "fn": 1.0, "fp": 0.11}  # NAB's standard profile (score.py PROFILES)


def normalised(raw: float, windows: int) -> float | None:
    """NAB's normalised score of files with ``windows`` windows and raw score ``raw``."""
    if windows == 0:
        return None
    null = -_WEIGHTS["fn"] * windows
    return 100.0 * (raw - null) / ((_WEIGHTS["tp"] + _WEIGHTS["fn"]) * windows)


def score_folder(data: Path, out: Path, make: Callable[[], StreamScorer]) -> int:
    """Score every ``data/*/*.csv`` with a fresh ``make()`` into the same path under ``out``."""
    rows = 0
    for src in sorted(data.glob("*/*.csv")):
        dst = out / src.parent.name / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        with src.open(newline="") as reader, dst.open("w", newline="") as writer:
            rows += score_csv(reader, writer, make())
    return rows


def load_scorer(nab: Path) -> ModuleType:
    """NAB's ``score.py`` from ``nab`` as a module."""
    spec = importlib.util.spec_from_file_location("nab_score", nab / "score.py")
    if spec is None or spec.loader is None:
        raise FileNotFoundError(nab / "score.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def file_scores(
    scorer: ModuleType, results: Path, windows: Mapping[str, list], threshold: float
) -> dict[str, FileScore]:
    """Per file of ``windows``: raw NAB score of the results in ``results`` at ``threshold``."""
    w = scorer.PROFILES[PROFILE]
    out = {}
    for rel, spans in sorted(windows.items()):
        (entry,), n = scorer.load(str(results), {rel: spans}, w)
        false = int(((entry["a"] >= threshold) & (entry["gid"] < 0)).sum())
        out[rel] = FileScore(float(scorer.raw_at([entry], w, threshold)), n, false)
    return out


def family(rel: str) -> str:
    return rel.split("/", 1)[0]


def folds_of(files: Sequence[str]) -> dict[str, list[tuple[str, ...]]]:
    """Leave-one-file-out and leave-one-family-out folds (held-out sets) over ``files``."""
    families = sorted({family(f) for f in files})
    return {
        "file": [(f,) for f in files],
        "family": [tuple(f for f in files if family(f) == fam) for fam in families],
    }


def _total(table: Mapping[str, FileScore], files: Sequence[str]) -> tuple[float, int, int]:
    rows = [table[f] for f in files]
    return (
        sum(r.raw for r in rows),
        sum(r.windows for r in rows),
        sum(r.false_alarms for r in rows),
    )


def _score_or_cost(raw: float, windows: int) -> float:
    """The normalised score, or for files without a window their raw cost (ranks the same)."""
    score = normalised(raw, windows)
    return raw if score is None else score


def cross_validate(
    scores: Mapping[str, Mapping[str, FileScore]], held_out_sets: Sequence[tuple[str, ...]]
) -> list[Fold]:
    """Per held-out set: the candidate best on the other files, and its held-out result.

    ``scores`` maps candidate names (in grid order: earlier wins ties) to per-file results.
    """
    files = sorted(next(iter(scores.values())))
    folds = []
    for held in held_out_sets:
        train = [f for f in files if f not in held]
        best_name, best = "", -math.inf
        for name, table in scores.items():
            value = _score_or_cost(*_total(table, train)[:2])
            if value > best:
                best_name, best = name, value
        raw, windows, false = _total(scores[best_name], held)
        folds.append(Fold(tuple(held), best_name, best, raw, windows, false))
    return folds


@dataclass(frozen=True)
class Summary:
    pooled: float | None  # NAB score of every held-out file at its fold's choice
    mean: float
    std: float
    low: float
    high: float
    scored_folds: int  # folds with a window (the others have no normalised score)


def summarise(folds: Sequence[Fold]) -> Summary:
    raw = sum(f.raw for f in folds)
    windows = sum(f.windows for f in folds)
    values = [f.score for f in folds if f.score is not None]
    nan = math.nan
    return Summary(
        normalised(raw, windows),
        statistics.fmean(values) if values else nan,
        statistics.stdev(values) if len(values) > 1 else nan,
        min(values, default=nan),
        max(values, default=nan),
        len(values),
    )


def choose_default(
    scores: Mapping[str, Mapping[str, FileScore]],
    file_folds: Sequence[Fold],
    published: Mapping[str, float | None],
) -> tuple[str, str]:
    """The shipped default by the module docstring's rule, and the reason in words."""
    files = sorted(next(iter(scores.values())))
    total_windows = sum(scores[next(iter(scores))][f].windows for f in files)
    pooled = {n: normalised(_total(t, files)[0], total_windows) or 0.0 for n, t in scores.items()}
    counts = Counter(f.chosen for f in file_folds)
    top = max(counts, key=lambda n: (counts[n], pooled[n]))
    scale = 100.0 / ((_WEIGHTS["tp"] + _WEIGHTS["fn"]) * total_windows)

    def contribution(name: str, rel: str) -> float:
        return scale * (scores[name][rel].raw + _WEIGHTS["fn"] * scores[name][rel].windows)

    reason = f"{top}: chosen in {counts[top]} of {len(file_folds)} leave-one-file-out folds"
    if published.get(top) is not None:
        return top, reason + "; has a published record"
    checks = []
    for name, record in published.items():
        if record is None:
            continue
        diffs = [contribution(top, f) - contribution(name, f) for f in files]
        se = math.sqrt(len(diffs)) * statistics.stdev(diffs)
        gap = pooled[top] - pooled[name]
        check = f"{name} {pooled[name]:.1f} vs {pooled[top]:.1f}, SE {se:.1f}"
        if gap <= se:
            return name, f"{name} (published {record}): within one standard error ({check})"
        checks.append(check)
    return top, reason + "; no published method within one standard error (" + "; ".join(
        checks
    ) + ")"


def evaluate(nab: Path, out: Path, grid: Sequence[Candidate] = GRID, rescore: bool = True) -> dict:
    """Run the whole procedure; a JSON-ready report (see :func:`markdown`)."""
    scorer = load_scorer(nab)
    windows = json.loads((nab / "windows.json").read_text())
    scores: dict[str, dict[str, FileScore]] = {}
    for cand in grid:
        results = out / cand.name
        if rescore or not results.exists():
            score_folder(nab / "data", results, cand.make)
        scores[cand.name] = file_scores(scorer, results, windows, cand.make().threshold)
    files = sorted(windows)
    report: dict = {"grid": [], "cv": {}}
    total_windows = sum(len(s) for s in windows.values())
    for cand in grid:
        raw, _, false = _total(scores[cand.name], files)
        per_file = [normalised(r.raw, r.windows) for r in scores[cand.name].values() if r.windows]
        report["grid"].append(
            dict(
                name=cand.name,
                note=cand.note,
                published=cand.published,
                in_sample=normalised(raw, total_windows),
                false_alarms=false,
                per_file_mean=statistics.fmean(per_file),
                per_file_std=statistics.stdev(per_file) if len(per_file) > 1 else math.nan,
            )
        )
    for kind, sets in folds_of(files).items():
        folds = cross_validate(scores, sets)
        report["cv"][kind] = dict(
            folds=[dict(asdict(f), held_out=list(f.held_out), score=f.score) for f in folds],
            summary=asdict(summarise(folds)),
        )
        if kind == "file":
            published = {c.name: c.published for c in grid}
            report["default"], report["reason"] = choose_default(scores, folds, published)
            thresholds = {c.name: c.make().threshold for c in grid}
            report["pooled_by_score_py"] = pooled_check(nab, out, folds, thresholds)
    return report


def pooled_check(nab: Path, out: Path, folds: Sequence[Fold], thresholds: dict) -> float:
    """The pooled score as ``score.py``'s command line computes it, for a check.

    Each held-out file's alarms (its fold's candidate at that candidate's threshold) are
    written as scores of 1.0 and 0.0 into ``out/pooled``, scored with ``--threshold 0.5``.
    """
    pooled = out / "pooled"
    for fold in folds:
        for rel in fold.held_out:
            src, dst = out / fold.chosen / rel, pooled / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            with src.open(newline="") as reader, dst.open("w", newline="") as writer:
                rows = csv.reader(reader)
                sink = csv.writer(writer, lineterminator="\n")
                sink.writerow(next(rows))
                for stamp, value, score in rows:
                    alarm = float(score) >= thresholds[fold.chosen]
                    sink.writerow([stamp, value, "1.0" if alarm else "0.0"])
    cmd = [sys.executable, str(nab / "score.py"), str(pooled), "--threshold", "0.5"]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return float(json.loads(done.stdout)[PROFILE]["score"])


def _num(x: float | None, digits: int = 1) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def markdown(report: dict) -> str:
    """The report as Markdown tables (the shape BENCHMARKS.md records)."""
    lines = [
        "| candidate | settings | published (full NAB) | all 15 files | per file with a window "
        "| false alarms |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for g in report["grid"]:
        lines.append(
            f"| `{g['name']}` | {g['note']} | {_num(g['published'])} | {_num(g['in_sample'])} "
            f"| {_num(g['per_file_mean'])} ± {_num(g['per_file_std'])} | {g['false_alarms']} |"
        )
    for kind, cv in report["cv"].items():
        lines += [
            "",
            f"Leave one {kind} out:",
            "",
            "| held out | chosen on the rest | train score | held-out score | false alarms |",
            "| --- | --- | ---: | ---: | ---: |",
        ]
        for f in cv["folds"]:
            held = f["held_out"][0] if kind == "file" else family(f["held_out"][0])
            held = held.split("/")[-1].removesuffix(".csv")
            score = _num(f["score"]) if f["windows"] else f"— (raw {f['raw']:.2f})"
            lines.append(
                f"| {held} | `{f['chosen']}` | {_num(f['train_score'])} | {score} "
                f"| {f['false_alarms']} |"
            )
        s = cv["summary"]
        lines += [
            "",
            f"Pooled cross-validated score {_num(s['pooled'])}; over the {s['scored_folds']} "
            f"folds with a window: mean {_num(s['mean'])} ± {_num(s['std'])} (std), "
            f"min {_num(s['low'])}, max {_num(s['high'])}.",
        ]
    check = report.get("pooled_by_score_py")
    if check is not None:
        lines += ["", f"score.py's command line on the pooled held-out results: {check:.2f}."]
    lines += ["", f"Default by the declared rule: `{report['default']}` ({report['reason']})."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("nab", nargs="?", type=Path, default=DEFAULT_NAB)
    ap.add_argument("--out", type=Path, default=REPO / "bench-results" / "nab-cv")
    ap.add_argument("--json", type=Path, help="also write the report as JSON here")
    ap.add_argument(
        "--reuse", action="store_true", help="reuse a candidate's results folder if present"
    )
    args = ap.parse_args(argv)
    report = evaluate(args.nab, args.out, rescore=not args.reuse)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
