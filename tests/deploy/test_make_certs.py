"""deploy/mosquitto/make-certs.sh: what it makes, what it refuses, and that running it again
adds devices without replacing the CA or anyone's password."""

from __future__ import annotations

import subprocess

import pytest

from tests.deploy.conftest import DEPLOY


def _make(out, *devices: str, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DEPLOY / "make-certs.sh"), *options, str(out), *devices],
        capture_output=True,
        text=True,
    )


def _verify(ca, cert) -> str:
    return subprocess.run(
        ["openssl", "verify", "-CAfile", str(ca), str(cert)], capture_output=True, text=True
    ).stdout


@pytest.mark.parametrize("device", ["qloop-worker", "qloop-sim", "a/b", "+", "-leading-dash"])
def test_a_certificate_is_made_only_for_a_device_id(tmp_path, device):
    r = _make(tmp_path, device)
    assert r.returncode == 2 and device in r.stderr
    assert not (tmp_path / "ca.key").exists()


def test_running_it_again_adds_a_device_and_keeps_the_rest(tmp_path):
    assert _make(tmp_path, "ac-1", options=("--password-device",)).returncode == 0
    ca, passwd = (tmp_path / "ca.crt").read_text(), (tmp_path / "passwd").read_text()
    assert _make(tmp_path, "ac-2", options=("--password-device",)).returncode == 0
    assert (tmp_path / "ca.crt").read_text() == ca
    assert (tmp_path / "passwd").read_text().startswith(passwd)  # ac-2 added, nobody changed
    users = [line.split(":")[0] for line in (tmp_path / "passwd").read_text().splitlines()]
    assert users == ["qloop-worker", "ac-1", "ac-2"]
    for device in ("ac-1", "ac-2"):
        assert "OK" in _verify(tmp_path / "ca.crt", tmp_path / "devices" / f"{device}.crt")
    assert (tmp_path / "devices" / "ac-1.key").stat().st_mode & 0o077 == 0  # private
