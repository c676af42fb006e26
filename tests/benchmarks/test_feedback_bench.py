"""The feedback benchmark in quick mode: a real ``qloop api`` process takes complaints, new ones
open tickets (201) and repeats answer the open one (200), with no errors, and every figure has
its same-run baseline. No timing assertions."""

from __future__ import annotations

import json
import math

import pytest

from benchmarks import run as bench_run
from benchmarks.common import SECTION

pytestmark = pytest.mark.slow


def test_quick_feedback_bench_files_new_and_repeated_complaints(tmp_path):
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\n## Someone else's section\n\nkeep me\n")
    out = tmp_path / "out.json"
    argv = ["--quick", "--only", "feedback", "--json", str(out), "--markdown", str(md)]
    assert bench_run.main(argv) == 0
    (result,) = json.loads(out.read_text())["results"]
    for f in result["figures"]:
        assert math.isfinite(f["value"]) and f["value"] > 0, f
        assert math.isfinite(f["baseline"]) and f["baseline"] > 0, f
    names = {f["name"] for f in result["figures"]}
    assert {"POST /api/v1/feedback, p99", "POST /api/v1/feedback, throughput"} <= names
    assert {f["baseline_name"] for f in result["figures"]} >= {
        "GET /healthz p99",
        "GET /api/v1/tickets?limit=50 p99",
    }
    assert any(f["unit"] == "texts/s" for f in result["figures"])
    params = result["params"]
    assert params["errors"] == 0
    assert params["answered"]["new → HTTP 201"] > 0
    assert params["answered"]["repeat → HTTP 200"] > 0  # the repeats found their open ticket
    assert "repeat → HTTP 201" not in params["answered"]
    text = md.read_text()
    assert "keep me" in text and SECTION in text and "| feedback |" in text
