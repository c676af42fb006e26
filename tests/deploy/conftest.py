"""A real Mosquitto running the shipped production configuration (deploy/mosquitto/), with a
test CA, certificates and passwords made by the shipped script.

The configuration is used as shipped except for what a test machine must change, each of which
must occur in the file (so the test fails when the file and this list drift apart): the
install paths point into the test's directory, the listeners are on free loopback ports, the
log goes to the test's log file, and the broker runs as the current user.
"""

from __future__ import annotations

import getpass
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from contract.mqtt import BrokerAddress
from qloop.broker import BrokerProcess, find_mosquitto, free_port, start_mosquitto

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
DEVICES = ("ac-a", "ac-b")


@dataclass
class SecureBroker:
    """The broker and the identities made for it."""

    process: BrokerProcess
    certs: Path
    cert_port: int  # TLS, a client certificate is the identity
    password_port: int  # TLS, username and password

    def password(self, user: str) -> str:
        return (self.certs / "passwords" / user).read_text().strip()

    def login(self, user: str, password: str | None = None) -> BrokerAddress:
        """A username/password client (``password`` defaults to the user's real one)."""
        return BrokerAddress(
            "127.0.0.1",
            self.password_port,
            username=user,
            password=self.password(user) if password is None else password,
            tls_ca=str(self.certs / "ca.crt"),
        )

    def env(self, user: str, password: str | None = None) -> dict[str, str]:
        """The variables that log ``qloop cloud run`` or ``qloop simulate`` in as ``user``."""
        login = self.login(user, password)
        return {
            "QLOOP_BROKER": f"127.0.0.1:{login.port}",
            "QLOOP_BROKER_USERNAME": user,
            "QLOOP_BROKER_PASSWORD": login.password or "",
            "QLOOP_BROKER_TLS_CA": login.tls_ca or "",
        }

    def device(self, device: str) -> BrokerAddress:
        """A device that proves itself with its client certificate."""
        return BrokerAddress(
            "127.0.0.1",
            self.cert_port,
            tls_ca=str(self.certs / "ca.crt"),
            tls_cert=str(self.certs / "devices" / f"{device}.crt"),
            tls_key=str(self.certs / "devices" / f"{device}.key"),
        )


def edge_config(device: str, broker: BrokerAddress) -> dict:
    """An edge agent's config (as ``examples/edge.toml`` reads) for a simulated unit that
    samples fast, logging in to ``broker`` as it says."""
    login = {
        key: getattr(broker, key)
        for key in ("username", "password", "tls_ca", "tls_cert", "tls_key")
        if getattr(broker, key) is not None
    }
    return {
        "device": {"id": device, "model": "KFR-35GW", "batch": "B1", "serial": f"SN-{device}",
                   "firmware": "2.3.0"},
        "broker": {"address": f"{broker.host}:{broker.port}", **login},
        "sampling": {"period_s": 0.01, "block_rows": 5, "block_max_age_s": 0.1},
        "source": {"kind": "simulated", "seed": 0},
    }  # fmt: skip


def _replace_once(text: str, old: str, new: str) -> str:
    assert old in text, f"deploy/mosquitto/mosquitto.conf no longer has {old!r}"
    return text.replace(old, new)


def config_for_test(certs: Path, data: Path, cert_port: int, password_port: int) -> str:
    """The shipped configuration with a test machine's paths, ports, log and user."""
    text = (DEPLOY / "mosquitto.conf").read_text()
    for old, new in (
        ("/etc/mosquitto/qloop/", f"{certs}/"),
        ("persistence_location /var/lib/mosquitto/", f"persistence_location {data}/"),
        ("listener 8883\n", f"listener {cert_port} 127.0.0.1\n"),
        ("listener 8884\n", f"listener {password_port} 127.0.0.1\n"),
        ("log_dest syslog\n", "log_dest stderr\n"),
    ):
        text = _replace_once(text, old, new)
    # as root Mosquitto would switch to user "mosquitto", who cannot read the test's files
    return f"user {getpass.getuser()}\n{text}"


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    """CA, server and device certificates and passwords from deploy/mosquitto/make-certs.sh."""
    out = tmp_path_factory.mktemp("certs")
    subprocess.run(
        [str(DEPLOY / "make-certs.sh"), "--simulator", "--password-device", str(out), *DEVICES],
        check=True,
        capture_output=True,
    )
    (out / "acl").write_text((DEPLOY / "acl").read_text())
    return out


@pytest.fixture
def secure_broker(certs, tmp_path) -> Iterator[SecureBroker]:
    if find_mosquitto() is None:
        msg = "Mosquitto is not installed: run scripts/setup.sh --test (apt-get install mosquitto)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    cert_port, password_port = free_port(), free_port()
    data = tmp_path / "broker"
    config = config_for_test(certs, data, cert_port, password_port)
    process = start_mosquitto(config, data, [cert_port, password_port])
    yield SecureBroker(process, certs, cert_port, password_port)
    process.kill()
