"""The shipped Flux queries: they render with safe parameters, refuse bad ones, and — when
INFLUXDB_URL, INFLUXDB_TOKEN and INFLUXDB_ORG name a real InfluxDB 2 — answer their questions
about points written by the InfluxSink."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from influxdb_client import InfluxDBClient

from cloud.anomaly.base import Finding
from cloud.ingest.registry import DeviceInfo
from cloud.store import queries
from cloud.store.influx import InfluxSink
from contract.protocol import Telemetry
from tests.helpers import wait_for
from tests.vm import InfluxDB2

EXAMPLES = {
    "batch_supply_trend": {"model": "KFR-35GW", "batch": "B20240517"},
    "device_noise_history": {"device": "ac-000123"},
    "batch_findings": {"model": "KFR-35GW"},
    "device_field": {"device": "ac-000123", "field": "supply_c"},
}


def test_every_shipped_query_is_documented_and_renders():
    assert sorted(EXAMPLES) == queries.available()
    for name, values in EXAMPLES.items():
        q = queries.query(name)
        assert {p.name for p in q.params} >= set(values) | {"bucket", "start", "stop"}
        assert all(p.doc for p in q.params)
        text = queries.load_query(name, **values)
        for key, value in values.items():
            assert f'{key} = "{value}"' in text.splitlines()
        assert "from(bucket: bucket)" in text and text.count("yield(") >= 1


HOSTILE = 'B1") |> drop() // \\ ${x}'  # a value that would be code if pasted into Flux
ROOT = Path(__file__).resolve().parents[3]
FLUX_MODULES = ROOT / ".cache" / "flux" / "node_modules"


def flux_verdicts(scripts: dict[str, str]) -> dict[str, bool]:
    """Each script checked by the Flux language's own parser and type checker (flux-lsp-node,
    installed by scripts/setup.sh --test; see tests/flux_check.js)."""
    node = shutil.which("node")
    if node is None or not (FLUX_MODULES / "@influxdata" / "flux-lsp-node").is_dir():
        msg = "the Flux checker is not installed: run scripts/setup.sh --test"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    out = subprocess.run(
        [node, str(ROOT / "tests" / "flux_check.js")],
        input=json.dumps(scripts),
        capture_output=True,
        text=True,
        env={**os.environ, "NODE_PATH": str(FLUX_MODULES)},
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)


def test_the_shipped_queries_pass_the_flux_type_checker():
    scripts = {name: queries.load_query(name, **values) for name, values in EXAMPLES.items()}
    scripts["hostile"] = queries.load_query("batch_supply_trend", model="M", batch=HOSTILE)
    scripts["times"] = queries.load_query(
        "device_field", device="d", field="f", start=1716000000.25, stop="now()"
    )
    # controls: the checker does fail what InfluxDB would refuse
    scripts["typo"] = scripts["device_field"].replace("|> keep(", "|> kep(")
    scripts["bad_type"] = scripts["batch_findings"].replace("findings: 0,", 'findings: "0",')
    scripts["bad_argument"] = scripts["device_noise_history"].replace(
        "range(start:", "range(begin:"
    )
    verdicts = flux_verdicts(scripts)
    assert verdicts == {
        **dict.fromkeys([*EXAMPLES, "hostile", "times"], True),
        "typo": False,
        "bad_type": False,
        "bad_argument": False,
    }


def test_values_are_literals_never_code():
    text = queries.load_query("batch_supply_trend", model="M", batch=HOSTILE)
    assert 'batch = "B1\\") |> drop() // \\\\ \\${x}"' in text.splitlines()
    start = datetime(2024, 5, 17, 8, tzinfo=UTC)
    text = queries.load_query(
        "batch_supply_trend", model="M", batch="B", start=start, stop=1716000000.5, every="1h30m"
    )
    lines = text.splitlines()
    assert "start = 2024-05-17T08:00:00Z" in lines and "every = 1h30m" in lines
    assert "stop = 2024-05-18T02:40:00.500000Z" in lines
    assert "start = -7d" in queries.load_query("batch_findings", model="M", start="-7d")


@pytest.mark.parametrize(
    ("name", "values", "message"),
    [
        ("nope", {}, "no query"),
        ("../influx", {}, "no query"),
        ("batch_findings", {}, "needs 'model'"),
        ("batch_findings", {"model": "M", "modle": "x"}, "no parameter modle"),
        ("batch_findings", {"model": 3}, "must be a string"),
        ("batch_supply_trend", {"model": "M", "batch": "B", "every": "1h) |> x"}, "duration"),
        ("batch_findings", {"model": "M", "start": "yesterday"}, "RFC 3339"),
        ("batch_findings", {"model": "M", "start": datetime(2024, 1, 1)}, "timezone"),
    ],
)
def test_bad_parameters_are_refused(name, values, message):
    with pytest.raises(ValueError, match=message):
        queries.load_query(name, **values)


# --- against a real InfluxDB 2 (skipped without one) -----------------------------------------


def _rows(client: InfluxDBClient, flux: str, result: str) -> list[dict]:
    tables = client.query_api().query(flux)
    return [r.values for t in tables for r in t.records if r.values.get("result") == result]


def test_the_queries_answer_their_questions_on_influxdb2(influxdb2: InfluxDB2):
    run = uuid.uuid4().hex[:10]
    model, batch = f"M{run}", f"B{run}"
    units = [DeviceInfo(f"d{run}-{i}", "air_conditioner", model, batch, "S", "1.0") for i in (1, 2)]
    t0 = (int(datetime.now(UTC).timestamp()) // 3600 - 4) * 3600  # two whole hours, recent
    sink = InfluxSink(influxdb2.url, influxdb2.token, influxdb2.org, influxdb2.bucket)
    fields = ("ts", "supply_c", "noise_db", "fan_speed")
    for k, info in enumerate(units):
        rows = tuple(
            (t0 + 60.0 * i, 15.0 + k + (i >= 60), 40.0 + (i % 2) + (i >= 60), 1 + (i >= 60))
            for i in range(120)
        )
        sink.add(info, Telemetry(info.device, 0, fields, rows))
    a, b = units
    sink.add_finding(a, Finding(a.device, "cooling_decline", t0 + 600, t0, 0.8, {"delta_t": 4.0}))
    sink.add_finding(b, Finding(b.device, "cooling_decline", t0 + 900, t0, 0.6))
    sink.add_finding(b, Finding(b.device, "cooling_decline", t0 + 1200, t0, 0.7))
    sink.add_finding(b, Finding(b.device, "noise_rise", t0 + 700, t0, 0.9, active=False))
    sink.flush()
    wait_for(lambda: sink.stats().written == 2 * 120 + 4, 30, "points written")
    sink.close()
    span = {"start": t0, "stop": t0 + 7200}
    hours = [datetime.fromtimestamp(t0 + 3600 * h, UTC) for h in (1, 2)]
    with InfluxDBClient(url=influxdb2.url, token=influxdb2.token, org=influxdb2.org) as client:
        trend = queries.load_query("batch_supply_trend", model=model, batch=batch, **span)
        got = _rows(client, trend, "supply_c")
        assert [(r["_time"], r["_value"]) for r in got] == [(hours[0], 15.5), (hours[1], 16.5)]
        got = _rows(client, trend, "units")
        assert [(r["_time"], r["_value"]) for r in got] == [(hours[0], 2), (hours[1], 2)]

        noise = queries.load_query("device_noise_history", device=a.device, every="1h", **span)
        got = sorted(
            (r["fan_speed"], r["_time"], r["mean"], r["max"])
            for r in _rows(client, noise, "noise_db")
        )
        assert got == [("1", hours[0], 40.5, 41.0), ("2", hours[1], 41.5, 42.0)]

        found = queries.load_query("batch_findings", model=model, **span)
        got = [
            (r["batch"], r["fault"], r["findings"], r["devices"], r["max_score"])
            for r in _rows(client, found, "findings")
        ]
        assert got == [(batch, "cooling_decline", 3, 2, 0.8)]  # the inactive one is left out

        one = queries.load_query("device_field", device=b.device, field="supply_c", **span)
        got = [(r["_time"], r["_value"]) for r in _rows(client, one, "series")]
        assert got == [
            (datetime.fromtimestamp(t0 + 60.0 * i, UTC), 16.0 + (i >= 60)) for i in range(120)
        ]
