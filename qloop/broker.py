"""Start an MQTT broker for the demo and the tests: the real Mosquitto when it is installed,
otherwise the embedded amqtt broker.

Mosquitto is what a deployment runs (fast, persistent sessions, the reference MQTT broker), so
it is the default whenever the ``mosquitto`` binary exists. amqtt is the fallback for `qloop
demo` on a machine where only pip was allowed to install things: pure Python, in PyPI, MQTT
3.1.1 with QoS 1, retained messages and wills — enough for the demo's few hundred messages per
second, not for a benchmark. The tests always use Mosquitto (the setup installs it).
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def find_binary(name: str, paths: tuple[str, ...] = ()) -> str | None:
    """``name`` on PATH, else the first executable of ``paths`` (sbin is often not on PATH)."""
    found = shutil.which(name)
    if found:
        return found
    return next((p for p in paths if os.access(p, os.X_OK)), None)


def find_mosquitto() -> str | None:
    return find_binary("mosquitto", MOSQUITTO_PATHS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@dataclass
class BrokerProcess:
    kind: str  # "mosquitto" or "amqtt"
    host: str
    port: int
    proc: subprocess.Popen
    data_dir: Path

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def mosquitto_config(port: int, data_dir: Path, *, persistence: bool = True) -> str:
    """A loopback-only Mosquitto 2 config sized for a fleet: large queues for the cloud
    workers' persistent sessions, so a worker that is down for a while misses nothing."""
    return "\n".join(
        [
            f"listener {port} 127.0.0.1",
            "allow_anonymous true",
            # as root Mosquitto would switch to user "mosquitto", who cannot write our data dir
            f"user {getpass.getuser()}",
            f"persistence {'true' if persistence else 'false'}",
            f"persistence_location {data_dir}/",
            "autosave_interval 10",
            "max_queued_messages 1000000",
            "max_queued_bytes 0",
            "max_inflight_messages 1000",
            "max_keepalive 300",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "",
        ]
    )


def _started(
    kind: str, proc: subprocess.Popen, data: Path, ports: Sequence[int], timeout: float
) -> BrokerProcess:
    """The broker once every port accepts; killed, with its log's tail, if it does not."""
    broker = BrokerProcess(kind, "127.0.0.1", ports[0], proc, data)
    deadline = time.monotonic() + timeout
    for port in ports:
        if not wait_port("127.0.0.1", port, deadline - time.monotonic()) or proc.poll() is not None:
            broker.kill()
            tail = (data / "broker.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{kind} did not start on port {port}:\n{tail}")
    return broker


def start_mosquitto(
    config: str, data_dir: str | Path, ports: Sequence[int], *, timeout: float = 15.0
) -> BrokerProcess:
    """Mosquitto with the given configuration text (its listeners on 127.0.0.1 at ``ports``),
    once every listener accepts; its log goes to ``data_dir/broker.log``."""
    mosquitto = find_mosquitto()
    if mosquitto is None:
        raise RuntimeError("Mosquitto is not installed (apt-get install mosquitto)")
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    conf = data / "mosquitto.conf"
    conf.write_text(config)
    with open(data / "broker.log", "ab") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=log, stderr=log)
    return _started("mosquitto", proc, data, ports, timeout)


def start_broker(
    data_dir: str | Path,
    *,
    port: int | None = None,
    prefer: str = "mosquitto",
    persistence: bool = True,
    timeout: float = 15.0,
) -> BrokerProcess:
    """Start a broker on 127.0.0.1 (a free port unless given) and wait until it accepts."""
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    if prefer == "mosquitto" and find_mosquitto():
        config = mosquitto_config(port, data, persistence=persistence)
        return start_mosquitto(config, data, [port], timeout=timeout)
    conf = data / "amqtt.yaml"
    conf.write_text(
        "listeners:\n  default:\n    type: tcp\n"
        f"    bind: 127.0.0.1:{port}\n"
        "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
        "    allow_anonymous: true\n"
    )
    amqtt = Path(sys.executable).with_name("amqtt")
    if not amqtt.exists():
        raise RuntimeError(
            "no MQTT broker: install Mosquitto (apt-get install mosquitto) or the amqtt package"
        )
    with open(data / "broker.log", "ab") as log:
        proc = subprocess.Popen([str(amqtt), "-c", str(conf)], stdout=log, stderr=log)
    return _started("amqtt", proc, data, [port], timeout)
