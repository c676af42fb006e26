"""The NAB cross-validation harness (evaluation/nab_cv.py) on tiny corpora.

The fold logic is checked on hand-made per-file results; the whole procedure, NAB's own
``score.py`` included, on a synthetic three-family corpus of a few hundred rows per file.
"""

from __future__ import annotations

import json
import math
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloud.anomaly.relative_entropy import RelativeEntropy
from cloud.anomaly.windowed_gaussian import WindowedGaussian
from evaluation import nab_cv
from evaluation.nab_cv import Candidate, FileScore

FILES = ("flat/a.csv", "steps/b.csv", "steps/c.csv", "spikes/d.csv")


def _table(raws: dict[str, float]) -> dict[str, FileScore]:
    return {f: FileScore(raws[f], 0 if f.startswith("flat") else 1, 0) for f in FILES}


def test_each_fold_chooses_on_its_training_files_only() -> None:
    scores = {
        "published": _table(
            {"flat/a.csv": 0.0, "steps/b.csv": 0.5, "steps/c.csv": 0.5, "spikes/d.csv": 0.5}
        ),
        "fitted": _table(
            {"flat/a.csv": 0.0, "steps/b.csv": 1.0, "steps/c.csv": 1.0, "spikes/d.csv": -0.2}
        ),
    }
    folds = nab_cv.cross_validate(scores, [(f,) for f in FILES])
    chosen = {f.held_out[0]: f.chosen for f in folds}
    # "fitted" wins on the rest (1.8 > 1.5) unless a step file is held out (0.8 < 1.0)
    assert chosen == {
        "flat/a.csv": "fitted",
        "steps/b.csv": "published",
        "steps/c.csv": "published",
        "spikes/d.csv": "fitted",
    }
    by_file = {f.held_out[0]: f for f in folds}
    assert by_file["flat/a.csv"].score is None  # no window: no normalised score
    assert by_file["steps/b.csv"].score == pytest.approx(75.0)  # raw 0.5 of 1 window
    assert by_file["spikes/d.csv"].score == pytest.approx(40.0)  # its held-out cost counts
    summary = nab_cv.summarise(folds)
    assert summary.scored_folds == 3
    assert summary.pooled == pytest.approx(100.0 * (0.5 + 0.5 - 0.2 + 3) / 6)
    assert (summary.low, summary.high) == (pytest.approx(40.0), pytest.approx(75.0))


def test_a_published_method_within_one_standard_error_is_preferred() -> None:
    scores = {
        "published": _table(
            {"flat/a.csv": 0.0, "steps/b.csv": 0.9, "steps/c.csv": 0.2, "spikes/d.csv": 0.6}
        ),
        "fitted": _table(
            {"flat/a.csv": 0.0, "steps/b.csv": 0.2, "steps/c.csv": 0.9, "spikes/d.csv": 0.7}
        ),
    }
    folds = nab_cv.cross_validate(scores, [(f,) for f in FILES])
    name, reason = nab_cv.choose_default(scores, folds, {"published": 50.0, "fitted": None})
    assert name == "published" and "within one standard error" in reason
    far = dict(scores, fitted=_table(dict.fromkeys(FILES, 1.0)))
    folds = nab_cv.cross_validate(far, [(f,) for f in FILES])
    assert nab_cv.choose_default(far, folds, {"published": 50.0, "fitted": None})[0] == "fitted"


def _write_corpus(root: Path) -> None:
    """Three families: a flat file, two steps, one spike; 400 rows of 5 minutes each."""
    start = datetime(2014, 4, 1, tzinfo=UTC)
    stamps = [(start + timedelta(minutes=5 * i)).strftime("%Y-%m-%d %H:%M:%S") for i in range(400)]
    base = [10.0 + 0.5 * math.sin(2 * math.pi * i / 48) for i in range(400)]
    series = {
        "flat/a.csv": ([42.0] * 400, None),
        "steps/b.csv": ([v + (20.0 if i >= 250 else 0.0) for i, v in enumerate(base)], 250),
        "steps/c.csv": ([v - (15.0 if i >= 300 else 0.0) for i, v in enumerate(base)], 300),
        "spikes/d.csv": ([v + (50.0 if i == 280 else 0.0) for i, v in enumerate(base)], 280),
    }
    windows = {}
    for rel, (values, onset) in series.items():
        path = root / "data" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [f"{t},{v}" for t, v in zip(stamps, values, strict=True)]
        path.write_text("timestamp,value\n" + "\n".join(rows) + "\n")
        spans = [[stamps[onset - 20] + ".000000", stamps[onset + 20] + ".000000"]] if onset else []
        windows[rel] = spans
    (root / "windows.json").write_text(json.dumps(windows))


def test_whole_procedure_on_a_synthetic_corpus(tmp_path: Path) -> None:
    score_py = nab_cv.DEFAULT_NAB / "score.py"
    if not score_py.exists():
        pytest.skip(f"NAB's score.py not found at {score_py}")
    nab = tmp_path / "nab"
    _write_corpus(nab)
    shutil.copy(score_py, nab / "score.py")
    grid = (
        Candidate("re", lambda: RelativeEntropy(warmup=60), 54.6),
        Candidate("wg", lambda: WindowedGaussian(window=100, warmup=60, threshold=0.99999)),
    )
    report = nab_cv.evaluate(nab, tmp_path / "out", grid)
    assert [g["name"] for g in report["grid"]] == ["re", "wg"]
    assert len(report["cv"]["file"]["folds"]) == 4
    assert [f["held_out"] for f in report["cv"]["family"]["folds"]] == [
        ["flat/a.csv"],
        ["spikes/d.csv"],
        ["steps/b.csv", "steps/c.csv"],
    ]
    pooled = report["cv"]["file"]["summary"]["pooled"]
    assert report["pooled_by_score_py"] == pytest.approx(pooled, abs=0.01)
    assert report["default"] in {"re", "wg"}
    text = nab_cv.markdown(report)
    assert "Leave one file out" in text and "Leave one family out" in text
