"""The deployment beyond one machine, checked statically (no container engine runs here): the
compose stack and the systemd units parse, run only qloop commands and options that exist, set
only qloop settings that exist, mount files that are shipped, and serve all 64 partitions once;
Grafana's dashboard asks exactly the shipped Flux queries, which pass the Flux type checker as
Grafana sends them and name only the measurements and tags of CONTRACTS.md §2."""

from __future__ import annotations

import configparser
import importlib.util
import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from cloud.store import queries
from qloop.cli import build_parser
from qloop.settings import Settings, env_name
from tests.cloud.store.test_queries import flux_verdicts

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose" / "docker-compose.yml"
SETTINGS_ENV = {env_name(name) for name in Settings.model_fields}
#: CONTRACTS.md §2: measurement → its tags
MEASUREMENTS = {
    "telemetry": {"device", "model", "batch", "firmware"},
    "event": {"device", "model", "batch", "kind"},
    "finding": {"device", "model", "batch", "fault"},
}
FLUX_COLUMNS = {"_measurement", "_field", "_value", "_time", "_start", "_stop"}


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _partitions(spec: str) -> set[int]:
    out: set[int] = set()
    for part in spec.split(","):
        low, _, high = part.partition("-")
        out |= set(range(int(low), int(high or low) + 1))
    return out


def _accepts(argv: list[str]) -> None:
    """``qloop ARGV`` parses (argparse exits on an unknown command or option)."""
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:  # pragma: no cover - the message is argparse's
        pytest.fail(f"qloop {' '.join(argv)}: not a valid command line ({exc})")


def test_the_compose_stack_runs_qloop_commands_that_exist() -> None:
    stack = _compose()
    services = stack["services"]
    assert {"mosquitto", "influxdb", "postgres", "grafana", "api"} <= set(services)
    workers = {
        k: v for k, v in services.items() if v.get("command", [None])[:2] == ["cloud", "run"]
    }
    assert len(workers) == 2  # two workers, as the issue asks
    served = []
    for name, service in services.items():
        if service.get("image") != "qloop:latest":
            continue
        _accepts(service["command"])
        env = {k for k in service["environment"] if k.startswith("QLOOP_")}
        assert env <= SETTINGS_ENV, f"{name}: no such setting {env - SETTINGS_ENV}"
        if name in workers:
            argv = service["command"]
            served.append(_partitions(argv[argv.index("--partitions") + 1]))
    assert sorted(map(len, served)) == [32, 32] and set.union(*served) == set(range(64))
    assert not set.intersection(*served)  # disjoint: each partition has one worker


def test_the_compose_stack_mounts_shipped_files_and_keeps_secrets_out() -> None:
    text = COMPOSE.read_text()
    for service in _compose()["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("../"):  # shipped with qloop (./certs/ is made by make-certs.sh)
                assert (COMPOSE.parent / source).exists(), source
    assert (COMPOSE.parent / "Dockerfile").is_file()
    # every secret is a variable the operator sets (compose refuses to start without it)
    for secret in ("POSTGRES_PASSWORD", "INFLUX_TOKEN", "WORKER_BROKER_PASSWORD", "API_TOKEN"):
        assert f"${{{secret}:?" in text, secret
    example = (COMPOSE.parent / "example.env").read_text()
    assert all(f"\n{s}=" in f"\n{example}" for s in ("POSTGRES_PASSWORD", "INFLUX_TOKEN"))
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    for port in re.findall(r"^listener (\d+)", conf, re.M):  # the broker's listeners published
        assert f'"{port}:{port}"' in text, port


def _units() -> dict[str, configparser.ConfigParser]:
    units = {}
    for path in sorted((DEPLOY / "systemd").glob("*.service")):
        unit = configparser.ConfigParser(strict=False, interpolation=None)
        unit.optionxform = str  # keys are case-sensitive in systemd
        unit.read_string(path.read_text())
        units[path.name] = unit
    return units


def test_the_systemd_units_run_qloop_commands_that_exist() -> None:
    units = _units()
    assert {"qloop-edge.service", "qloop-worker@.service", "qloop-api.service"} <= set(units)
    for name, unit in units.items():
        assert {"Unit", "Service", "Install"} <= set(unit.sections()), name
        argv = shlex.split(unit["Service"]["ExecStart"].replace("%i", "0-31"))
        assert argv[0] == "/opt/qloop/.venv/bin/qloop", name
        _accepts(argv[1:])
    example = (DEPLOY / "systemd" / "qloop.env.example").read_text()
    names = set(re.findall(r"^(QLOOP_\w+)=", example, re.M))
    assert names and names <= SETTINGS_ENV, names - SETTINGS_ENV


# --- Grafana ------------------------------------------------------------------------------------
def _make_dashboard():
    spec = importlib.util.spec_from_file_location(
        "make_dashboard", DEPLOY / "grafana" / "make_dashboard.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_grafana_is_provisioned_with_the_influxdb_source_and_the_dashboard() -> None:
    source = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/influxdb.yml").read_text())
    (ds,) = source["datasources"]
    assert ds["type"] == "influxdb" and ds["jsonData"]["version"] == "Flux"
    assert ds["url"] == "http://influxdb:8086" and ds["secureJsonData"]["token"] == "$INFLUX_TOKEN"
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/qloop.yml").read_text())
    mounted = {v.split(":")[1] for v in _compose()["services"]["grafana"]["volumes"]}
    assert provider["providers"][0]["options"]["path"] in mounted
    committed = json.loads((DEPLOY / "grafana/dashboards/qloop.json").read_text())
    assert committed == json.loads(json.dumps(_make_dashboard().dashboard()))  # regenerated
    uids = {p["datasource"]["uid"] for p in committed["panels"]}
    assert uids == {ds["uid"]}


def test_the_dashboard_asks_the_shipped_queries_as_grafana_sends_them() -> None:
    panels = json.loads((DEPLOY / "grafana/dashboards/qloop.json").read_text())["panels"]
    shipped = {name: queries.query(name).text for name in queries.available()}
    asked = {}
    variables = _make_dashboard().VARIABLES
    for panel in panels:
        text = panel["targets"][0]["query"]
        (name,) = [n for n, body in shipped.items() if text.endswith("\n\n" + body)]
        # what Grafana sends: its variables interpolated, v.* defined by the data source
        sent = re.sub(r"\$\{(\w+)\}", lambda m: variables[m[1]], text)
        asked[name] = "v = {timeRangeStart: -7d, timeRangeStop: now(), windowPeriod: 1h}\n" + sent
    assert set(asked) == set(shipped)  # every shipped query has its panel
    broken = dict(asked, control=asked["batch_findings"].replace("|> group(", "|> grup("))
    verdicts = flux_verdicts(broken)
    assert verdicts == {**dict.fromkeys(asked, True), "control": False}


def test_the_shipped_queries_name_only_what_the_contract_stores() -> None:
    for name in queries.available():
        text = queries.query(name).text
        measured = set(re.findall(r'r\._measurement == "(\w+)"', text))
        assert measured and measured <= set(MEASUREMENTS), name
        tags = set().union(*(MEASUREMENTS[m] for m in measured))
        # what is filtered on before the rows are reshaped (pivot, map) is a stored column
        stored = re.split(r"\|> (?:pivot|map)\(", text)[0]
        columns = set(re.findall(r"\br\.(\w+)", stored))
        assert columns and columns <= FLUX_COLUMNS | tags, (name, columns - FLUX_COLUMNS - tags)
