"""deploy/mosquitto/mosquitto.conf read as text: what a running broker would not tell."""

from __future__ import annotations

from tests.deploy.conftest import DEPLOY


def _options() -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    for line in (DEPLOY / "mosquitto.conf").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition(" ")
            options.setdefault(name, []).append(value)
    return options


def test_queue_limits_fit_the_numbers_mosquitto_reads():
    # Mosquitto 2.0 parses these as a C int: a larger value wraps and silently means "no limit"
    options = _options()
    for name in ("max_queued_messages", "max_queued_bytes", "max_inflight_messages"):
        (value,) = options[name]
        assert 0 < int(value) <= 2**31 - 1, name  # 0 would be "no limit" too


def test_no_way_in_without_an_identity():
    options = _options()
    assert options["allow_anonymous"] == ["false"]
    assert options["per_listener_settings"] == ["false"]  # one rule for every listener
    assert options["require_certificate"] == ["true", "false"]  # 8883 certificate, 8884 password
    assert options["use_identity_as_username"] == ["true"]
    assert len(options["certfile"]) == len(options["listener"]) == 2  # TLS on both
    assert options["persistence"] == ["true"]
