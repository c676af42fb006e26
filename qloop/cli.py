"""The ``qloop`` command (CONTRACTS.md §5).

Every option can come from, in order of precedence: the command line, an environment variable
``QLOOP_<OPTION>`` (``--influx-url`` → ``QLOOP_INFLUX_URL``), a TOML config file given with
``--config-file`` (top-level keys, or a table named after the command, e.g. ``[cloud]``), and
the built-in default. ``--help`` on each command lists its options with their variables.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contract.errors import QloopError
from qloop.tools import ToolMissing, import_tool

if TYPE_CHECKING:
    from contract.mqtt import MqttLink

log = logging.getLogger("qloop")


class _Options:
    """Adds options whose defaults come from the environment or a config file."""

    def __init__(
        self, parser: argparse.ArgumentParser, config: dict[str, Any], section: str
    ) -> None:
        self.parser = parser
        self.config = {
            **{k: v for k, v in config.items() if not isinstance(v, dict)},
            **config.get(section, {}),
        }

    def add(
        self,
        flag: str,
        *,
        default: Any = None,
        help: str,
        type: Callable = str,
        required: bool = False,
        **kw: Any,
    ) -> None:
        name = flag.lstrip("-").replace("-", "_")
        env = f"QLOOP_{name.upper()}"
        if env in os.environ:
            value, source = os.environ[env], "env"
        elif name in self.config:
            value, source = self.config[name], "config"
        else:
            value, source = default, None
        if source is not None and value is not None and type is not str:
            value = type(value)
        need = required and value is None
        self.parser.add_argument(
            flag,
            default=value,
            type=type,
            required=need,
            help=f"{help} (env {env}" + (f"; default {default})" if default is not None else ")"),
            **kw,
        )


def _load_config(argv: Sequence[str]) -> dict[str, Any]:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config-file", default=os.environ.get("QLOOP_CONFIG_FILE"))
    known, _ = pre.parse_known_args(argv)
    if not known.config_file:
        return {}
    try:
        with open(known.config_file, "rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SystemExit(f"qloop: cannot read config file {known.config_file}: {e}") from None


def _positive(x: str) -> float:
    v = float(x)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{x} is not a positive number")
    return v


def build_parser(config: dict[str, Any] | None = None) -> argparse.ArgumentParser:
    config = config or {}
    p = argparse.ArgumentParser(
        prog="qloop", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config-file", help="TOML file with option defaults (env QLOOP_CONFIG_FILE)")
    p.add_argument(
        "--log-level",
        default=os.environ.get("QLOOP_LOG_LEVEL", "INFO"),
        help="logging level (env QLOOP_LOG_LEVEL; default INFO)",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="the main job: broker, worker, API and a simulated fleet")
    o = _Options(demo, config, "demo")
    o.add(
        "--duration",
        type=float,
        help="stop after S seconds once tickets are printed (default: serve until Ctrl-C)",
    )
    o.add("--scenario", default="demo", help="built-in scenario name or TOML file")
    o.add("--workdir", default="var/demo", help="where the demo keeps its databases and logs")
    o.add("--api-port", type=int, default=8000, help="port of the ticketing API")
    o.add("--broker-port", type=int, help="port for the demo's MQTT broker (default: a free one)")
    demo.set_defaults(func=_cmd_demo)

    edge = sub.add_parser("edge", help="the edge agent")
    edge_sub = edge.add_subparsers(dest="edge_command", required=True, metavar="COMMAND")
    er = edge_sub.add_parser("run", help="run the edge agent")
    o = _Options(er, config, "edge")
    o.add("--config", required=True, help="the agent's TOML config file")
    o.add("--duration", type=float, help="stop after S seconds")
    er.set_defaults(func=_cmd_edge_run)

    cloud = sub.add_parser("cloud", help="the cloud worker")
    cloud_sub = cloud.add_subparsers(dest="cloud_command", required=True, metavar="COMMAND")
    cr = cloud_sub.add_parser("run", help="run a cloud worker (ingest, detectors, tickets)")
    o = _Options(cr, config, "cloud")
    o.add("--broker", default="127.0.0.1:1883", help="MQTT broker HOST:PORT")
    o.add("--partitions", default="0-63", help="partitions to serve, e.g. 0-15,32")
    o.add("--db", default="sqlite:///var/qloop.db", help="ticket database URL (SQLAlchemy)")
    o.add("--journal", default="var/journal.db", help="the worker's embedded store (SQLite)")
    o.add("--influx-url", help="InfluxDB URL; telemetry is written there when set")
    o.add("--influx-token", help="InfluxDB token")
    o.add("--influx-org", help="InfluxDB organisation")
    o.add("--influx-bucket", default="qloop", help="InfluxDB bucket")
    o.add(
        "--checkpoint-db",
        help="SQLAlchemy URL of a database the workers share for detector checkpoints, so a"
        " partition moved to a worker on another host resumes without relearning"
        " (default: the worker's own journal)",
    )
    o.add("--client-id", help="MQTT client id (default: derived from the partitions)")
    o.add(
        "--queue-size",
        type=int,
        default=10_000,
        help="received messages waiting for the worker thread at most (backpressure)",
    )
    o.add("--duration", type=float, help="stop after S seconds")
    o.add(
        "--ready-file",
        help="write this file once the worker's subscriptions are active "
        "(a readiness probe for scripts and orchestrators)",
    )
    cr.set_defaults(func=_cmd_cloud_run)
    dl = cloud_sub.add_parser(
        "dead-letters", help="what a worker refused: counts by reason and the latest messages"
    )
    o = _Options(dl, config, "cloud")
    o.add("--journal", default="var/journal.db", help="the worker's journal (SQLite), read-only")
    o.add("--latest", type=int, default=10, help="show this many of the latest dead letters")
    dl.set_defaults(func=_cmd_dead_letters)

    api = sub.add_parser("api", help="the ticketing API and pages")
    o = _Options(api, config, "api")
    o.add("--db", default="sqlite:///var/qloop.db", help="ticket database URL (SQLAlchemy)")
    o.add("--host", default="127.0.0.1", help="address to listen on")
    o.add("--port", type=int, default=8000, help="port to listen on")
    o.add("--journal", help="a worker's journal (SQLite), for the evidence charts on the pages")
    o.add("--influx-url", help="the InfluxDB the worker writes to; the charts read it when set")
    o.add("--influx-token", help="InfluxDB token (read access to the bucket)")
    o.add("--influx-org", default="", help="InfluxDB organisation")
    o.add("--influx-bucket", default="qloop", help="InfluxDB bucket")
    o.add(
        "--influx-query",
        default="auto",
        choices=("auto", "flux", "victoriametrics"),
        help="how to query --influx-url: Flux (InfluxDB) or VictoriaMetrics' export API"
        " (default: asked of its /health)",
    )
    api.set_defaults(func=_cmd_api)

    sim = sub.add_parser("simulate", help="run a simulated fleet against a broker")
    sim.add_argument("scenario", help="built-in scenario name or TOML file")
    o = _Options(sim, config, "simulate")
    o.add("--broker", default="127.0.0.1:1883", help="MQTT broker HOST:PORT")
    o.add(
        "--speed",
        type=float,
        help="simulated seconds per wall second (0 = flat out; default: the scenario's)",
    )
    o.add("--ground-truth", help="write the injected faults to this JSON file")
    o.add("--client-prefix", default="qloop-sim", help="MQTT client id prefix")
    sim.set_defaults(func=_cmd_simulate)

    ev = sub.add_parser("eval", help="detector accuracy on a simulated fleet with known faults")
    ev.add_argument("scenario", help="built-in scenario name (e.g. leak15, healthy, week) or TOML")
    o = _Options(ev, config, "eval")
    o.add("--seeds", type=int, default=1, help="independent fleets (seed, seed+1, ...)")
    o.add("--block-rows", type=int, default=60, help="readings per telemetry block")
    o.add("--horizon", type=float, default=48.0, help="detection horizon in hours")
    o.add("--json", help="also write the report as JSON to this file")
    ev.set_defaults(func=_cmd_eval)

    sub.add_parser(
        "bench",
        help="run the benchmarks and append them to BENCHMARKS.md (qloop bench --help)",
        add_help=False,
    )

    score = sub.add_parser("score", help="the generic detector over a timestamp,value CSV")
    score.add_argument("file", help="input CSV with a timestamp,value header")
    o = _Options(score, config, "score")
    o.add("--output", help="output CSV (default: stdout)")
    score.set_defaults(func=_cmd_score)
    return p


# --- commands -------------------------------------------------------------------------------


def _stop_on_signals(stop: Callable[[], None]) -> None:
    def handler(signum: int, frame: object) -> None:
        stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _cmd_demo(args: argparse.Namespace) -> int:
    from qloop.demo import run_demo

    return run_demo(
        scenario=args.scenario,
        workdir=Path(args.workdir),
        api_port=args.api_port,
        broker_port=args.broker_port,
        duration=args.duration,
    )


def _cmd_edge_run(args: argparse.Namespace) -> int:
    from edge_agent.config import ConfigError, build_agent, load_config
    from simulators.source import EDGE_SOURCES

    try:
        agent = build_agent(load_config(args.config), EDGE_SOURCES)
    except ConfigError as e:
        raise SystemExit(f"qloop edge run: {e}") from None
    _stop_on_signals(agent.stop)
    agent.run(duration_s=args.duration)
    return 0


def _cmd_cloud_run(args: argparse.Namespace) -> int:
    from cloud.ticketing.settings import Settings
    from cloud.worker import Worker, WorkerSettings
    from contract.mqtt import BrokerAddress
    from contract.protocol import parse_partitions

    try:
        settings = WorkerSettings(
            broker=BrokerAddress.parse(args.broker),
            partitions=parse_partitions(args.partitions),
            db_url=args.db,
            journal_path=args.journal,
            influx_url=args.influx_url,
            influx_token=args.influx_token,
            influx_org=args.influx_org,
            influx_bucket=args.influx_bucket,
            client_id=args.client_id,
            checkpoint_db=args.checkpoint_db,
            queue_size=args.queue_size,
            ticket_policy=Settings(db=args.db).ticket_policy(),
        )
    except ValueError as e:
        raise SystemExit(f"qloop cloud run: {e}") from None
    worker = Worker(settings)
    _stop_on_signals(worker.stop)
    if args.ready_file:
        _announce_ready(worker.link, Path(args.ready_file))
    log.info(
        "cloud worker %s on %s, partitions %s",
        settings.mqtt_client_id(),
        args.broker,
        args.partitions,
    )
    worker.run(duration_s=args.duration)
    return 0


def _cmd_dead_letters(args: argparse.Namespace) -> int:
    from cloud.store.dead_letters import report

    try:
        print(report(args.journal, latest=args.latest))
    except ValueError as e:
        raise SystemExit(f"qloop cloud dead-letters: {e}") from None
    return 0


def _announce_ready(link: MqttLink, path: Path) -> None:
    import threading

    def wait() -> None:
        if link.wait_subscribed(timeout=None):
            path.write_text("subscribed\n")

    threading.Thread(target=wait, name="ready-file", daemon=True).start()


def _cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from cloud.ticketing.app import create_app
    from cloud.ticketing.settings import Settings

    app = create_app(
        Settings(
            db=args.db,
            journal=args.journal,
            influx_url=args.influx_url,
            influx_token=args.influx_token,
            influx_org=args.influx_org,
            influx_bucket=args.influx_bucket,
            influx_query=args.influx_query,
        )
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from contract.mqtt import BrokerAddress
    from simulators.runner import FleetRunner, Progress
    from simulators.scenario import ScenarioError, load_scenario

    try:
        scenario = load_scenario(args.scenario)
        broker = BrokerAddress.parse(args.broker)
    except (ScenarioError, ValueError) as e:
        raise SystemExit(f"qloop simulate: {e}") from None
    if args.speed is not None:
        scenario = replace(scenario, speed=args.speed)
    tty = sys.stderr.isatty()

    def progress(p: Progress) -> None:
        width = 30
        done = int(width * p.step / max(1, p.steps))
        line = (
            f"[{'#' * done}{'.' * (width - done)}] {p.step}/{p.steps} steps, "
            f"{p.readings} readings, {p.acknowledged}/{p.published} acknowledged"
        )
        print(("\r" if tty else "") + line, end="" if tty else "\n", file=sys.stderr, flush=True)

    runner = FleetRunner(
        scenario,
        broker,
        client_prefix=args.client_prefix,
        on_progress=progress,
        progress_every=max(1, int(scenario.duration_s / scenario.sample_period_s) // 20),
    )
    if args.ground_truth:
        runner.fleet.write_ground_truth(args.ground_truth)
    _stop_on_signals(runner.stop)
    n = runner.run()
    if tty:
        print(file=sys.stderr)
    log.info("simulated %d readings from %d units", n, len(runner.cores))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    run_eval = import_tool("evaluation.fleet", "eval").run
    return run_eval(
        args.scenario,
        seeds=args.seeds,
        block_rows=args.block_rows,
        horizon_h=args.horizon,
        json_path=args.json,
    )


def _cmd_score(args: argparse.Namespace) -> int:
    from cloud.anomaly.nab import score_csv

    try:
        with open(args.file, newline="") as src:
            if args.output:
                with open(args.output, "w", newline="") as dst:
                    score_csv(src, dst)
            else:
                score_csv(src, sys.stdout)
    except (OSError, ValueError) as e:
        raise SystemExit(f"qloop score: {e}") from None
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # its own option parser (benchmarks/run.py), options and all
        try:
            bench = import_tool("benchmarks.run", "bench")
        except ToolMissing as e:
            raise SystemExit(f"qloop: {e}") from None
        return int(bench.main(argv[1:]) or 0)
    args = build_parser(_load_config(argv)).parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except QloopError as e:  # refused with a reason: one line, not a traceback
        raise SystemExit(f"qloop {args.command}: {e}") from None


if __name__ == "__main__":
    sys.exit(main())
