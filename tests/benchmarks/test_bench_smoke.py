"""Every benchmark in quick mode, so `qloop bench` cannot rot: each produces figures with
same-run baselines, and the Markdown goes into its own section only. No timing assertions."""

from __future__ import annotations

import json
import math
import sys

import pytest

from benchmarks import embedded_store
from benchmarks import run as bench_run
from benchmarks.common import SECTION, append_section
from qloop.broker import find_mosquitto

pytestmark = [
    pytest.mark.skipif(find_mosquitto() is None, reason="needs Mosquitto"),
    pytest.mark.slow,
]


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
        # >= 0, not > 0: a count such as false findings is rightly 0; every baseline is > 0
        assert math.isfinite(f["value"]) and f["value"] >= 0, f
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


def test_embedded_store_runs_without_duckdb_and_says_so(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "duckdb", None)  # as if not installed: import fails
    res = embedded_store.bench_embedded_store(quick=True)
    names = {f.name.split(":")[0] for f in res.figures}
    assert names == {"sqlite", "sqlite-full"}
    assert all(f.baseline_name.startswith("plain append-only file") for f in res.figures)
    assert any("DuckDB not installed" in n and "duckdb-multirow" in n for n in res.notes)

    monkeypatch.setattr(sys, "argv", ["embedded_store.py", "--messages", "20", "--devices", "2"])
    embedded_store.main()
    out = capsys.readouterr().out
    assert "| sqlite |" in out and "| duckdb" not in out
    assert "Not run (`import duckdb` failed): duckdb, duckdb-multirow." in out


def test_embedded_store_rejects_unknown_stores():
    with pytest.raises(ValueError, match="unknown stores"):
        embedded_store.run(messages=10, stores=["file", "postgres"])
