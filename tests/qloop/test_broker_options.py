"""How the worker and the simulator log in to the broker: the options, where they may come
from, and a bad value refused in one line before anything connects."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from qloop import cli
from qloop.broker import free_port
from qloop.loading import load
from qloop.settings import SettingsError


def _qloop(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qloop", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _one_line(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_the_worker_gets_the_login_and_tls_files(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("a CA")
    env = {
        "QLOOP_BROKER_USERNAME": "qloop-worker",
        "QLOOP_BROKER_PASSWORD": "s3cret",
        "QLOOP_BROKER_TLS_CA": str(ca),
    }
    broker = load("cloud", {"broker": "mqtt.example.com:8884"}, environ=env).worker().broker
    assert (broker.host, broker.port, broker.username) == ("mqtt.example.com", 8884, "qloop-worker")
    assert (broker.password, broker.tls_ca, broker.tls_insecure) == ("s3cret", str(ca), False)


def test_the_password_is_not_a_command_line_option():
    for command in (["cloud", "run"], ["simulate", "smoke"]):
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args([*command, "--broker-password", "s3cret"])
    for command in (["cloud", "run"], ["simulate", "smoke"]):
        args = cli.build_parser().parse_args(
            [*command, "--broker-username", "u", "--broker-tls-ca", "ca"]
        )
        assert (args.broker_username, args.broker_tls_ca) == ("u", "ca")


@pytest.mark.parametrize(
    ("given", "env", "says"),
    [
        ({}, {"QLOOP_BROKER_PASSWORD": "s3cret"}, "no --broker-username"),
        (
            {"broker_tls_ca": "/nowhere/ca.crt"},
            {},
            "--broker-tls-ca (QLOOP_BROKER_TLS_CA): no file",
        ),
        ({"broker_tls_cert": __file__}, {}, "--broker-tls-cert needs --broker-tls-ca"),
        ({"broker": "host:port"}, {}, "port 'port' is not a number"),
    ],
)
def test_a_login_that_cannot_work_is_refused(given, env, says):
    with pytest.raises(SettingsError, match=re.escape(says)) as refused:
        load("cloud", given, environ=env).broker_address()
    assert "s3cret" not in str(refused.value)


def test_a_missing_certificate_in_one_line():
    line = _one_line(_qloop("simulate", "smoke", "--broker-tls-ca", "/nowhere/ca.crt"))
    assert line == "qloop simulate: --broker-tls-ca (QLOOP_BROKER_TLS_CA): no file /nowhere/ca.crt"


def test_a_bad_config_value_in_one_line(tmp_path):
    config = tmp_path / "qloop.toml"
    config.write_text('[cloud]\nqueue_size = "plenty"\n')
    line = _one_line(_qloop("--config-file", str(config), "cloud", "run", "--duration", "0"))
    assert line.startswith("qloop cloud run: --queue-size (QLOOP_QUEUE_SIZE) from the config")
    assert "'plenty'" in line


def test_a_bad_environment_value_in_one_line():
    r = _qloop("cloud", "run", "--duration", "0", env={"QLOOP_BROKER_TLS_INSECURE": "perhaps"})
    line = _one_line(r)
    assert line.startswith("qloop cloud run: --broker-tls-insecure (QLOOP_BROKER_TLS_INSECURE)")
    assert "from the environment" in line


@pytest.mark.slow
def test_the_simulator_gives_up_on_an_unreachable_broker_in_one_line():
    nothing = f"127.0.0.1:{free_port()}"  # nothing listens there
    r = _qloop("simulate", "smoke", "--broker", nothing, "--connect-timeout-s", "4")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("qloop simulate: no connection to the MQTT broker at 127.0.0.1:")
    assert "cannot reach the broker" in r.stderr and "Connection refused" in r.stderr  # warned
