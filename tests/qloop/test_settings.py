"""One settings loader: every option from the command line, ``QLOOP_*`` or the config file, in
that order, over one default, the same way for every command."""

from __future__ import annotations

import argparse
import re

import pytest

from cloud.ticketing.policy import TicketPolicy
from cloud.worker import _envelope
from qloop import cli
from qloop.loading import load, read_config_file
from qloop.settings import Settings, SettingsError


def test_command_line_over_environment_over_config_file_over_default():
    config = {"db": "sqlite:///top.db", "cloud": {"db": "sqlite:///cloud.db", "alpha": 0.02}}
    env = {"QLOOP_ALPHA": "0.03", "QLOOP_QUEUE_SIZE": "7"}
    s = load("cloud", {"queue_size": "9"}, config=config, environ=env)
    assert s.db == "sqlite:///cloud.db"  # the command's table over the top level
    assert s.alpha == 0.03  # environment over the file
    assert s.queue_size == 9  # command line over the environment
    assert s.influx_bucket == Settings().influx_bucket  # the one default
    assert load("api", config=config, environ={}).db == "sqlite:///top.db"


def test_the_ticket_policy_reaches_the_worker_from_the_config_file(tmp_path):
    path = tmp_path / "qloop.toml"
    path.write_text("[cloud]\nalpha = 0.05\nsla_ack_s = 120\ndevice_tickets = false\n")
    worker = load("cloud", config=read_config_file(path), environ={}).worker()
    assert worker.ticket_policy.alpha == 0.05
    assert worker.ticket_policy.device_tickets is False
    assert worker.ticket_policy.sla.ack_deadline("normal").total_seconds() == 120


def test_the_rated_envelope_reaches_the_worker(tmp_path):
    path = tmp_path / "qloop.toml"
    path.write_text("[cloud]\nrated_max_outdoor_models = 'KFR-72LW/T3=52'\n")
    worker = load("cloud", config=read_config_file(path), environ={}).worker()
    assert worker.rated_max_outdoor_models == {"KFR-72LW/T3": 52.0}
    assert worker.rated_max_outdoor_c == 43.0  # T1 for the rest
    envelope = _envelope(worker)  # what the worker judges trips with
    assert envelope.rated_max_c("KFR-72LW/T3") == 52.0 and envelope.rated_max_c("X") == 43.0


def test_policy_defaults_are_the_policys_own():
    policy, default = Settings().ticket_policy(), TicketPolicy()
    assert (policy.alpha, policy.min_affected, policy.verify_window_s) == (
        default.alpha,
        default.min_affected,
        default.verify_window_s,
    )
    assert policy.sla == default.sla


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"environ": {"QLOOP_ALPHA": "2"}}, "--alpha (QLOOP_ALPHA) from the environment"),
        ({"config": {"api": {"port": "x"}}}, "--port (QLOOP_PORT) from the config file [api]"),
        ({"config": {"bogus": 1}}, "config file: unknown option 'bogus'"),
        (
            {"environ": {"QLOOP_RATED_MAX_OUTDOOR_MODELS": "KFR-72LW"}},
            "--rated-max-outdoor-models (QLOOP_RATED_MAX_OUTDOOR_MODELS) from the environment",
        ),
    ],
)
def test_a_bad_value_is_refused_naming_option_and_source(source, message):
    kw = {"environ": {}, **source}
    with pytest.raises(SettingsError, match=re.escape(message)):
        load("api", **kw)


def test_the_command_says_what_is_wrong_in_one_line(monkeypatch, capsys):
    monkeypatch.setenv("QLOOP_MIN_AFFECTED", "0")
    with pytest.raises(SystemExit) as e:
        cli.main(["cloud", "run", "--duration", "1"])
    assert str(e.value).startswith("qloop cloud run: --min-affected (QLOOP_MIN_AFFECTED)")
    assert "\n" not in str(e.value)


def _options(parser: argparse.ArgumentParser) -> set[str]:
    out = set()
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for sub in action.choices.values():
                out |= _options(sub)
        elif action.option_strings and action.dest not in ("help", "config_file"):
            out.add(action.dest)
    return out


def test_every_command_line_option_is_in_the_table():
    options = _options(cli.build_parser())
    assert {"broker", "alpha", "sla_ack_s", "influx_query", "latest", "json_path"} <= options
    assert options - set(Settings.model_fields) == set()
