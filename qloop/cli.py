"""The ``qloop`` command (CONTRACTS.md §5).

Every option can come from, in order of precedence: the command line, an environment variable
``QLOOP_<OPTION>`` (``--influx-url`` → ``QLOOP_INFLUX_URL``), a TOML config file given with
``--config-file`` (top-level keys, or a table named after the command, e.g. ``[cloud]``), and
the built-in default; the options, their defaults and the loader are in ``qloop/settings.py``.
This module only declares which command takes which options and runs the command. ``--help``
on each command lists its options with their variables.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from contract.errors import QloopError
from qloop.loading import load, read_config_file
from qloop.settings import Settings, SettingsError, env_name
from qloop.tools import ToolMissing, import_tool

if TYPE_CHECKING:
    from cloud.worker import Worker
    from cloud.worker_metrics import MetricsServer, Snapshots
    from contract.mqtt import BrokerRefused, MqttLink

log = logging.getLogger("qloop")


def _add(parser: argparse.ArgumentParser, *names: str, **flags: str) -> None:
    """Options of :class:`~qloop.settings.Settings` on ``parser``: ``--influx-url`` for
    ``influx_url``, help from the table with the variable and the default. Only what is given
    on the command line lands in the namespace; :func:`qloop.loading.load` adds the rest."""
    for name in names:
        field = Settings.model_fields[name]
        default = field.default
        shown = f"; default {default}" if default not in (None, "") else ""
        if field.annotation is not None and "SecretStr" in str(field.annotation):
            shown = ""
        extra = flags.get(name)
        parser.add_argument(
            "--" + name.replace("_", "-"),
            *((extra,) if extra else ()),
            dest=name,
            default=argparse.SUPPRESS,
            help=f"{field.description} (env {env_name(name)}{shown})",
        )


# how a worker or the simulator logs in to the broker (the password, like the API token, only
# from the environment or the config file: a command line is visible to every local user)
_BROKER = tuple(
    n
    for n in Settings.model_fields
    if n.startswith("broker") and n not in ("broker_port", "broker_password")
)
_SERVICE = ("db", "journal", "influx_url", "influx_token", "influx_org", "influx_bucket")
_POLICY = tuple(
    name
    for name in Settings.model_fields
    if name.startswith(("sla_", "escalation_"))
    or name
    in (
        "alpha",
        "min_affected",
        "correction",
        "device_tickets",
        "min_unit_days",
        "background_rate_per_unit_day",
        "background_too",
        "verify_window_s",
    )
)

# who repeated complaints alert, and when: wherever feedback is filed (the SMTP password, like
# the API token, only from the environment or the config file)
_REPEAT_ALERTS = tuple(n for n in Settings.model_fields if n.startswith("repeat_alert_")) + (
    "alert_emails",
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qloop", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config-file", help="TOML file with option values (env QLOOP_CONFIG_FILE)")
    _add(p, "log_level")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="the main job: broker, worker, API and a simulated fleet")
    _add(demo, "duration", "scenario", "workdir", "broker_port")
    _add(demo, "port", port="--api-port")
    demo.set_defaults(func=_cmd_demo, section="demo", label="demo")

    edge = sub.add_parser("edge", help="the edge agent")
    edge_sub = edge.add_subparsers(dest="edge_command", required=True, metavar="COMMAND")
    er = edge_sub.add_parser("run", help="run the edge agent")
    _add(er, "config", "duration")
    er.set_defaults(func=_cmd_edge_run, section="edge", label="edge run")

    cloud = sub.add_parser("cloud", help="the cloud worker")
    cloud_sub = cloud.add_subparsers(dest="cloud_command", required=True, metavar="COMMAND")
    cr = cloud_sub.add_parser("run", help="run a cloud worker (ingest, detectors, tickets)")
    _add(cr, *_BROKER, "partitions", *_SERVICE, "checkpoint_db", "client_id", "queue_size")
    _add(cr, "receiver")
    _add(cr, "clock_tolerance_s", "checkpoint_every_s", "journal_retention_days")
    _add(cr, "rated_max_outdoor_c", "rated_max_outdoor_models", "rated_max_indoor_c")
    _add(cr, "duration", "ready_file", "metrics_port", "host", *_POLICY)
    cr.set_defaults(func=_cmd_cloud_run, section="cloud", label="cloud run")
    dl = cloud_sub.add_parser(
        "dead-letters", help="what a worker refused: counts by reason and the latest messages"
    )
    _add(dl, "journal", "latest")
    dl.set_defaults(func=_cmd_dead_letters, section="cloud", label="cloud dead-letters")

    api = sub.add_parser("api", help="the ticketing API and pages")
    _add(api, *_SERVICE, "influx_query", "host", "port", "api_token_name", *_POLICY)
    _add(api, *_REPEAT_ALERTS, "smtp_host", "smtp_port", "smtp_starttls", "smtp_user", "smtp_from")
    _add(api, "targets")
    api.set_defaults(func=_cmd_api, section="api", label="api")

    fb = sub.add_parser("feedback", help="people's feedback: bulk import, retraining")
    fb_sub = fb.add_subparsers(dest="action", required=True, metavar="ACTION")
    fi = fb_sub.add_parser(
        "import", help="file every row of a CSV, .xlsx, .eml or mbox export as feedback"
    )
    fi.add_argument("file", help="the export: .csv, .xlsx, .eml or an mbox file")
    _add(fi, "db", "channel", "mapping", "utc_offset", "feedback_model", *_POLICY)
    _add(fi, *_REPEAT_ALERTS)
    _add(fi, "json_path", json_path="--json")
    fi.set_defaults(func=_cmd_feedback_import, section="feedback", label="feedback import")
    fr = fb_sub.add_parser(
        "retrain",
        help="refit the classifier with people's corrections; prints held-out accuracy"
        " before and after and writes --feedback-model",
    )
    _add(fr, "db", "feedback_model")
    fr.set_defaults(func=_cmd_feedback_retrain, section="feedback", label="feedback retrain")

    audit = sub.add_parser("audit", help="check that no ticket history was rewritten")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    av = audit_sub.add_parser(
        "verify",
        help="walk every ticket's history chain and name the first entry changed, deleted or"
        " inserted outside qloop (exit 1)",
    )
    _add(av, "db")
    av.set_defaults(func=_cmd_audit_verify, section="audit", label="audit verify")

    export = sub.add_parser(
        "export", help="tickets opened in a date range with their history and fixes, JSON lines"
    )
    _add(export, "db", "since", "until", "output")
    export.set_defaults(func=_cmd_export, section="export", label="export")

    report = sub.add_parser("report", help="quality reports for scripts and cron")
    report_sub = report.add_subparsers(dest="report_command", required=True, metavar="REPORT")
    rm = report_sub.add_parser(
        "monthly", help="the month's quality report (CONTRACTS.md 4.3) as JSON, HTML or PDF"
    )
    _add(rm, "db", "month", "output")
    _add(rm, "report_format", "report_lang", report_format="--format", report_lang="--lang")
    rm.set_defaults(func=_cmd_report_monthly, section="report", label="report monthly")

    sim = sub.add_parser("simulate", help="run a simulated fleet against a broker")
    sim.add_argument("scenario", help="built-in scenario name or TOML file")
    _add(sim, *_BROKER, "speed", "ground_truth", "client_prefix", "connect_timeout_s")
    sim.set_defaults(func=_cmd_simulate, section="simulate", label="simulate")

    ev = sub.add_parser("eval", help="detector accuracy on a simulated fleet with known faults")
    ev.add_argument("scenario", help="built-in scenario name (e.g. leak15, healthy, week) or TOML")
    _add(ev, "seeds", "first_seed", "block_rows", "horizon")
    _add(ev, "json_path", json_path="--json")
    ev.set_defaults(func=_cmd_eval, section="eval", label="eval")

    sub.add_parser(
        "bench",
        help="run the benchmarks and append them to BENCHMARKS.md (qloop bench --help)",
        add_help=False,
    )

    score = sub.add_parser("score", help="the generic detector over a timestamp,value CSV")
    score.add_argument("file", help="input CSV with a timestamp,value header")
    _add(score, "output")
    score.set_defaults(func=_cmd_score, section="score", label="score")
    return p


# --- commands -------------------------------------------------------------------------------


def _stop_on_signals(stop: Callable[[], None]) -> None:
    def handler(signum: int, frame: object) -> None:
        stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _cmd_demo(args: argparse.Namespace, s: Settings) -> int:
    from qloop.demo import run_demo

    return run_demo(
        scenario=s.scenario,
        workdir=Path(s.workdir),
        api_port=s.port,
        broker_port=s.broker_port,
        duration=s.duration,
    )


def _cmd_edge_run(args: argparse.Namespace, s: Settings) -> int:
    from edge_agent.config import build_agent, load_config
    from simulators.source import EDGE_SOURCES

    if s.config is None:
        raise SettingsError("--config is required (or QLOOP_CONFIG): the agent's TOML file")
    agent = build_agent(load_config(s.config), EDGE_SOURCES)
    _stop_on_signals(agent.stop)
    agent.run(duration_s=s.duration)
    return 0


def _cmd_cloud_run(args: argparse.Namespace, s: Settings) -> int:
    from cloud.worker import Worker

    try:
        settings = s.worker()
    except ValueError as e:
        raise SettingsError(str(e)) from None
    snapshots = None
    if s.metrics_port is not None:
        from cloud.worker_metrics import Snapshots

        snapshots = Snapshots()
    worker = Worker(settings, on_snapshot=snapshots.publish if snapshots else None)
    metrics = _serve_metrics(s, worker, snapshots) if snapshots else None
    _stop_on_signals(worker.stop)
    _stop_when_refused(worker.link, worker.stop)
    if s.ready_file:
        _announce_ready(worker.link, Path(s.ready_file))
    log.info(
        "cloud worker %s on %s, partitions %s", settings.mqtt_client_id(), s.broker, s.partitions
    )
    try:
        worker.run(duration_s=s.duration)
    finally:
        if metrics is not None:
            metrics.close()
    if worker.link.refusal is not None:
        raise _refused(worker.link.refusal)
    return 0


def _serve_metrics(s: Settings, worker: Worker, snapshots: Snapshots) -> MetricsServer:
    from cloud.worker_metrics import MetricsServer

    try:
        server = MetricsServer(s.host, s.metrics_port or 0, snapshots, worker.readiness)
    except OSError as e:
        raise SettingsError(
            f"--metrics-port {s.metrics_port} on {s.host}: {e.strerror or e}; choose another"
            f" ({env_name('metrics_port')})"
        ) from None
    server.start()
    log.info("worker metrics on http://%s:%d/metrics", s.host, server.port)
    return server


def _cmd_dead_letters(args: argparse.Namespace, s: Settings) -> int:
    from cloud.store.dead_letters import report

    if not s.journal:
        raise SettingsError("--journal (QLOOP_JOURNAL): which worker's journal to read")
    print(report(s.journal, latest=s.latest))
    return 0


def _stop_when_refused(link: MqttLink, stop: Callable[[], None]) -> None:
    """A broker that refuses our credentials will refuse them again: stop (and say why) rather
    than retry for ever. A broker that cannot be reached is retried, warned at each attempt."""
    import threading

    def wait() -> None:
        if link.wait_refused(timeout=None) is not None:
            stop()

    threading.Thread(target=wait, name="broker-refusal", daemon=True).start()


def _refused(refusal: BrokerRefused) -> SettingsError:
    return SettingsError(
        f"{refusal}; check --broker-username and {env_name('broker_password')} (or"
        " --broker-tls-cert) against the broker's password file, certificates and ACL"
    )


def _announce_ready(link: MqttLink, path: Path) -> None:
    import threading

    def wait() -> None:
        if link.wait_subscribed(timeout=None):
            path.write_text("subscribed\n")

    threading.Thread(target=wait, name="ready-file", daemon=True).start()


def _check_port(host: str, port: int) -> None:
    """Refuse, in one line, a port something else listens on (uvicorn would log and exit)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise SettingsError(f"--host {host}: {e}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as e:
            raise SettingsError(
                f"--port {port} on {host}: {e.strerror or e}; choose another (QLOOP_PORT)"
            ) from None


def _cmd_api(args: argparse.Namespace, s: Settings) -> int:
    import uvicorn

    from cloud.ticketing.app import create_app

    _check_port(s.host, s.port)
    uvicorn.run(create_app(s.api()), host=s.host, port=s.port, log_level="warning")
    return 0


def _cmd_feedback_import(args: argparse.Namespace, s: Settings) -> int:
    from qloop.feedback import run_import

    return run_import(Path(args.file), s)


def _cmd_feedback_retrain(args: argparse.Namespace, s: Settings) -> int:
    from qloop.feedback import run_retrain

    return run_retrain(s)


def _cmd_audit_verify(args: argparse.Namespace, s: Settings) -> int:
    from cloud.ticketing.audit import open_database, verify

    engine = open_database(s.db)
    try:
        report = verify(engine)
    finally:
        engine.dispose()
    for broken in report.broken:
        print(broken)
    print(report.summary())
    return 0 if report.ok else 1


def _cmd_export(args: argparse.Namespace, s: Settings) -> int:
    from cloud.ticketing.audit import export, open_database

    if s.since and s.until and s.since > s.until:
        raise SettingsError(f"--since {s.since} is after --until {s.until}")
    engine = open_database(s.db)
    partial = Path(f"{s.output}.partial") if s.output else None
    try:
        if partial is None:
            done = export(engine, s.since, s.until, sys.stdout)
        else:  # the file appears whole or not at all
            with partial.open("w", encoding="utf-8") as out:
                done = export(engine, s.since, s.until, out)
            partial.replace(s.output)
    except OSError as e:
        raise SettingsError(f"--output {s.output or 'stdout'}: {e.strerror or e}") from None
    finally:
        engine.dispose()
        if partial is not None:
            partial.unlink(missing_ok=True)
    print(
        f"exported {done.tickets} tickets ({done.entries} history entries, {done.fixes} fixes)"
        f" to {s.output or 'stdout'}",
        file=sys.stderr,
    )
    return 0


def _cmd_report_monthly(args: argparse.Namespace, s: Settings) -> int:
    from qloop.reporting import run_report

    return run_report(s)


def _cmd_simulate(args: argparse.Namespace, s: Settings) -> int:
    from dataclasses import replace

    from contract.mqtt import BrokerRefused
    from simulators.runner import FleetRunner, Progress
    from simulators.scenario import load_scenario

    try:
        scenario = load_scenario(args.scenario)
    except ValueError as e:
        raise SettingsError(str(e)) from None
    broker = s.broker_address()
    if s.speed is not None:
        scenario = replace(scenario, speed=s.speed)
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
        client_prefix=s.client_prefix,
        on_progress=progress,
        progress_every=max(1, int(scenario.duration_s / scenario.sample_period_s) // 20),
    )
    if s.ground_truth:
        runner.fleet.write_ground_truth(s.ground_truth)
    _stop_on_signals(runner.stop)
    try:
        n = runner.run(connect_timeout=s.connect_timeout_s)
    except BrokerRefused as e:
        raise _refused(e) from None
    if tty:
        print(file=sys.stderr)
    log.info("simulated %d readings from %d units", n, len(runner.cores))
    return 0


def _cmd_eval(args: argparse.Namespace, s: Settings) -> int:
    run_eval = import_tool("evaluation.fleet", "eval").run
    return run_eval(
        args.scenario,
        seeds=s.seeds,
        first_seed=s.first_seed,
        block_rows=s.block_rows,
        horizon_h=s.horizon,
        json_path=s.json_path,
    )


def _cmd_score(args: argparse.Namespace, s: Settings) -> int:
    from cloud.anomaly.nab import score_csv

    try:
        with open(args.file, newline="") as src:
            if s.output:
                with open(s.output, "w", newline="") as dst:
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
    args = build_parser().parse_args(argv)
    given = {k: v for k, v in vars(args).items() if k in Settings.model_fields}
    if args.command in ("simulate", "eval"):
        given.pop("scenario")  # positional there: the command's argument, not the demo's option
    try:
        settings = load(
            args.section,
            given,
            config=read_config_file(args.config_file or os.environ.get("QLOOP_CONFIG_FILE")),
        )
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        for noisy in ("alembic.runtime.plugins", "alembic.runtime.migration", "fontTools"):
            logging.getLogger(noisy).setLevel(logging.WARNING)  # start-up and PDF noise
        return int(args.func(args, settings) or 0)
    except QloopError as e:  # refused with a reason: one line, not a traceback
        raise SystemExit(f"qloop {args.label}: {e}") from None


if __name__ == "__main__":
    sys.exit(main())
