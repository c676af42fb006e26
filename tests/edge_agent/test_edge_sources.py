"""Sensor sources and the agent's config file, without a broker."""

from __future__ import annotations

import sys

import certifi
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.config import ConfigError, build_agent, build_rules, load_config
from edge_agent.core import DEFAULT_SAFETY_RULES, clean_value
from edge_agent.disk_buffer import DiskBuffer
from edge_agent.sources import CommandSource, CsvSource, SysfsSource, parse_key_values
from simulators.source import EDGE_SOURCES, SimulatedUnitSource


def test_csv_replay_real_time_accelerated_and_looping(tmp_path):
    f = tmp_path / "rec.csv"
    f.write_text("ts,return_c,current_a\n100,20.0,4.0\n110,21.0,\n120,22.0,oops\n")
    src = CsvSource(f)
    assert src.fields == ("return_c", "current_a")
    assert src.read(5000.0) == (20.0, 4.0)
    assert src.read(5009.0) == (20.0, 4.0)
    assert src.read(5010.0) == (21.0, None)
    assert src.read(5025.0) == (22.0, None)
    assert src.read(5030.0) == (20.0, 4.0), "one period past the end starts again"
    fast = CsvSource(f, speed=10.0, fields=["current_a"])
    assert [fast.read(t) for t in (0.0, 1.0, 2.0)] == [(4.0,), (None,), (None,)]
    once = CsvSource(f, loop=False)
    once.read(0.0)
    with pytest.raises(EOFError):
        once.read(100.0)


def test_csv_errors_name_the_problem(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("value\n1\n")
    with pytest.raises(ValueError, match="no time column"):
        CsvSource(f)
    f.write_text("ts,x\n2,1\n1,1\n")
    with pytest.raises(ValueError, match="backwards"):
        CsvSource(f)


def test_command_source_parses_key_values():
    code = "print('return_c=24.5 current_a=4.2'); print('noise_db=n/a # comment')"
    src = CommandSource([sys.executable, "-c", code], ["return_c", "current_a", "noise_db", "x"])
    assert src.read(0.0) == [24.5, 4.2, None, None]
    failing = CommandSource([sys.executable, "-c", "import sys; sys.exit(3)"], ["x"])
    with pytest.raises(RuntimeError, match="exited with 3"):
        failing.read(0.0)


def test_parse_key_values():
    assert parse_key_values("a=1, b=2;c=3\n# d=4\ne = 5\nf=6") == {
        "a": "1",
        "b": "2",
        "c": "3",
        "f": "6",
    }


def test_sysfs_source_scales_and_survives_missing_files(tmp_path):
    (tmp_path / "temp1_input").write_text("24500\n")
    src = SysfsSource(
        {"return_c": tmp_path / "temp1_input", "x": tmp_path / "missing"}, {"return_c": 0.001}
    )
    assert src.read(0.0) == [24.5, None]


def test_simulated_unit_is_reproducible():
    a, b = SimulatedUnitSource("ac-1", seed=5), SimulatedUnitSource("ac-1", seed=5)
    rows_a = [a.read(1_700_000_000.0 + 10 * i) for i in range(5)]
    assert rows_a == [b.read(1_700_000_000.0 + 10 * i) for i in range(5)]
    assert len(rows_a[0]) == len(a.fields) == 9 and "current_a" in a.fields
    assert a.read(1_699_000_000.0) is not None, "a clock stepped back does not raise"


@given(
    st.one_of(
        st.none(),
        st.text(),
        st.binary(),
        st.integers(),
        st.floats(),
        st.booleans(),
        st.lists(st.integers()),
    )
)
def test_clean_value_never_raises(x):
    v = clean_value(x)
    assert v is None or isinstance(v, float)


def test_clean_value_huge_int_is_null():
    assert clean_value(10**400) is None and clean_value(3) == 3.0


CONFIG = """
[device]
id = "ac-000123"
model = "KFR-35GW"
batch = "B20240517"
serial = "SN-000123"
firmware = "2.3.0"

[broker]
address = "broker.example.com:8883"
username = "ac-000123"
tls_ca = "{ca}"

[sampling]
period_s = 1.0
block_rows = 30
block_max_age_s = 5.0

[buffer]
path = "{db}"
max_bytes = 1000000
max_age_s = 86400

[source]
kind = "command"
command = "read-ac --port /dev/ttyUSB0"
fields = ["return_c", "current_a"]

[[safety]]
kind = "overcurrent"
field = "current_a"
limit = 8.0
rearm = 0.5

[[safety]]
kind = "freeze"
field = "return_c"
limit = 2.0
above = false
"""


def test_config_file_and_environment(tmp_path):
    path = tmp_path / "edge.toml"
    path.write_text(CONFIG.format(db=tmp_path / "b.db", ca=certifi.where()))
    env = {
        "QLOOP_EDGE_BROKER_PASSWORD": "s3cret",
        "QLOOP_EDGE_SAMPLING_BLOCK_ROWS": "12",
        "QLOOP_EDGE_BUFFER_SYNCHRONOUS": "FULL",
        "QLOOP_OTHER": "x",
    }
    agent = build_agent(load_config(path, env), EDGE_SOURCES)
    try:
        assert agent.link.broker.password == "s3cret" and agent.link.broker.tls_ca
        assert agent.link.broker.port == 8883 and agent.link.broker.username == "ac-000123"
        assert agent.core.block_rows == 12 and agent.identity.sample_period_s == 1.0
        assert isinstance(agent.buffer, DiskBuffer) and agent.buffer.max_bytes == 1_000_000
        assert [(r.kind, r.limit, r.above) for r in agent.core.rules] == [
            ("overcurrent", 8.0, True),
            ("freeze", 2.0, False),
        ]
        assert agent.source.command == ["read-ac", "--port", "/dev/ttyUSB0"]
    finally:
        agent.buffer.close()


def test_config_errors(tmp_path):
    path = tmp_path / "edge.toml"
    path.write_text(
        CONFIG.format(db=tmp_path / "b.db", ca=certifi.where()).replace(
            'field = "return_c"', 'field = "nope"'
        )
    )
    with pytest.raises(ConfigError, match="nope"):
        build_agent(load_config(path, {}), EDGE_SOURCES)
    with pytest.raises(ConfigError, match="required"):
        build_rules({"safety": [{"kind": "x", "field": "y"}]})
    assert build_rules({}) == DEFAULT_SAFETY_RULES and build_rules({"safety": []}) == ()
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml", {})
    path.write_text(CONFIG.format(db=tmp_path / "b.db", ca=tmp_path / "no-ca.pem"))
    with pytest.raises(ConfigError, match="TLS file"):
        build_agent(load_config(path, {}), EDGE_SOURCES)
    bad = tmp_path / "bad.toml"
    bad.write_text('[device]\nid = "a"\n[source]\nkind = "teleport"\n')
    with pytest.raises(ConfigError):
        build_agent(load_config(bad, {}), EDGE_SOURCES)


def test_config_sets_the_start_blanking(tmp_path):
    table = {"kind": "overcurrent", "field": "current_a", "limit": 16.0}
    (rule,) = build_rules(
        {"safety": [{**table, "start_field": "compressor_on", "blank_s": 3, "instant_factor": 3}]}
    )
    assert (rule.start_field, rule.blank_s, rule.instant_factor) == ("compressor_on", 3.0, 3.0)
    (plain,) = build_rules({"safety": [table]})
    assert plain.start_field is None and plain.blank_s == 0.0
    with pytest.raises(ConfigError, match="blank_s"):
        build_rules({"safety": [{**table, "start_field": "compressor_on", "blank_s": -2}]})
    default = next(r for r in DEFAULT_SAFETY_RULES if r.kind == "overcurrent")
    assert default.start_field == "compressor_on" and default.blank_s > 1.5
    path = tmp_path / "edge.toml"
    text = CONFIG.format(db=tmp_path / "b.db", ca=certifi.where())
    path.write_text(text.replace("rearm = 0.5", 'rearm = 0.5\nstart_field = "compressor_on"'))
    with pytest.raises(ConfigError, match="compressor_on"):
        build_agent(load_config(path, {}), EDGE_SOURCES)
