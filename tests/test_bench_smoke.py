"""Every benchmark in quick mode, so `qloop bench` cannot rot: each produces figures with
same-run baselines, and the Markdown goes into its own section only. No timing assertions."""

from __future__ import annotations

import json
import math

import pytest

from benchmarks import run as bench_run
from benchmarks.common import SECTION, append_section
from qloop.broker import find_mosquitto

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="needs Mosquitto")


@pytest.mark.broker
@pytest.mark.parametrize("name", sorted(bench_run.BENCHES))
def test_quick_benchmark_produces_figures_and_baselines(name, tmp_path):
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\n## Someone else's section\n\nkeep me\n")
    out = tmp_path / "out.json"
    assert (
        bench_run.main(["--quick", "--only", name, "--json", str(out), "--markdown", str(md)]) == 0
    )
    (result,) = json.loads(out.read_text())["results"]
    assert result["figures"]
    for f in result["figures"]:
        assert math.isfinite(f["value"]) and f["value"] > 0, f
        assert math.isfinite(f["baseline"]) and f["baseline"] > 0, f
        assert f["baseline_name"]
    text = md.read_text()
    assert "keep me" in text and SECTION in text
    assert text.index("keep me") < text.index(SECTION)  # appended, other sections untouched


def test_append_goes_to_the_end_of_its_section_only(tmp_path):
    md = tmp_path / "B.md"
    md.write_text(f"# B\n\n{SECTION}\n\nold run\n\n## Later section\n\ntheirs\n")
    append_section(md, "new run\n")
    text = md.read_text()
    assert text.index("old run") < text.index("new run") < text.index("## Later section")
    assert text.endswith("theirs\n")
