"""An operator's mistake gets one line that says what to fix, and a non-zero exit where the
command cannot go on; never a traceback. Run as an operator runs it: ``qloop`` in a process."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from qloop.broker import free_port


def _qloop(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qloop", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _refused_in_one_line(r: subprocess.CompletedProcess[str], start: str) -> str:
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(start), r.stderr
    return last


def test_a_ticket_database_that_cannot_be_opened(tmp_path):
    url = f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}"
    line = _refused_in_one_line(
        _qloop("api", "--db", url, "--port", str(free_port())), "qloop api: cannot open"
    )
    assert "x.db" in line and "unable to open database file" in line


def test_a_database_url_that_is_not_one(tmp_path):
    journal = str(tmp_path / "j.db")  # not the default var/journal.db in the checkout
    line = _refused_in_one_line(
        _qloop("cloud", "run", "--db", "not-a-url", "--journal", journal, "--duration", "1"),
        "qloop cloud run: cannot open the ticket database not-a-url",
    )
    assert "Could not parse" in line


def test_a_password_in_the_url_is_not_printed():
    url = "postgresql+psycopg://qloop:s3cret@127.0.0.1:1/qloop"
    line = _refused_in_one_line(
        _qloop("api", "--db", url, "--port", str(free_port())), "qloop api: cannot open"
    )
    assert "s3cret" not in line and "Connection refused" in line


def test_a_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _refused_in_one_line(
            _qloop("api", "--db", f"sqlite:///{tmp_path / 't.db'}", "--port", str(port)),
            f"qloop api: --port {port} on 127.0.0.1:",
        )
    assert "in use" in line


@pytest.mark.slow
def test_an_unreachable_broker_is_warned_at_once_and_at_each_retry(tmp_path):
    port = free_port()  # nothing listens there
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "qloop", "cloud", "run",
            "--broker", f"127.0.0.1:{port}",
            "--db", f"sqlite:///{tmp_path / 't.db'}",
            "--journal", str(tmp_path / "j.db"),
            "--duration", "120",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    lines: list[str] = []
    warnings: list[str] = []
    try:
        assert worker.stderr is not None
        for line in worker.stderr:  # until the first attempt and a retry have been warned of
            lines.append(line)
            if "cannot reach the broker" in line:
                warnings.append(line)
                if len(warnings) == 2:
                    break
    finally:
        worker.terminate()
        _, rest = worker.communicate(timeout=60)
    stderr = "".join(lines) + rest
    assert len(warnings) == 2, stderr
    assert f"127.0.0.1:{port}" in warnings[0] and "Connection refused" in warnings[0]
    assert "Traceback" not in stderr
