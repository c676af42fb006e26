"""Every option of the ``qloop`` command, in one table with one default each.

Where a value comes from (command line, environment, config file, default) is
:mod:`qloop.loading`'s job; the values are validated by this one model whatever their source, so
``alpha = 2`` is refused alike from the file, the environment or the command line.

The lower layers take plain configuration objects built here (:meth:`Settings.ticket_policy`,
:meth:`Settings.worker`, :meth:`Settings.api`): they never read the environment themselves.
The defaults of the ticket policy and the SLA clocks are the policy's own
(``cloud/ticketing/policy.py``, ``sla.py``), referred to here rather than written twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from cloud.anomaly.clock import ClockCheck
from cloud.anomaly.envelope import MAX_INDOOR_C, T1_MAX_OUTDOOR_C, parse_models
from cloud.ticketing.escalation import parse_recipients
from cloud.ticketing.policy import TicketPolicy
from cloud.ticketing.sla import SlaPolicy
from cloud.ticketing.targets import Targets
from cloud.ticketing.workdays import CalendarError, WorkCalendar, parse_calendar
from contract.errors import QloopError
from contract.mqtt import BrokerAddress

if TYPE_CHECKING:
    from cloud.store.readback import InfluxTarget
    from cloud.ticketing.app import ApiConfig
    from cloud.ticketing.escalation import Notifier
    from cloud.worker_settings import WorkerSettings

_POLICY = TicketPolicy()
_SLA = SlaPolicy()


ENV_PREFIX = "QLOOP_"


def env_name(option: str) -> str:
    """``influx_url`` → ``QLOOP_INFLUX_URL``."""
    return ENV_PREFIX + option.upper()


class SettingsError(QloopError, ValueError):
    """An option's value cannot be used; the message names the option and where it came from."""


# options written as KEY=VALUE pairs, and what reads them (a ValueError names the bad pair)
_PAIRS: dict[str, Callable[[str], object]] = {
    "rated_max_outdoor_models": parse_models,
    "alert_emails": parse_recipients,
}


class Settings(BaseModel):
    """The options, their defaults and their help (``qloop <command> --help`` shows them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # the parts of the system and where they meet
    broker: str = Field(
        f"{BrokerAddress().host}:{BrokerAddress().port}", description="MQTT broker HOST:PORT"
    )
    broker_username: str | None = Field(
        None, description="MQTT username (a worker's account, e.g. qloop-worker)"
    )
    broker_password: SecretStr | None = Field(
        None, description="MQTT password (environment or config file only)"
    )
    broker_tls_ca: str | None = Field(
        None, description="CA certificate file that signed the broker's: connect over TLS"
    )
    broker_tls_cert: str | None = Field(None, description="client certificate file (TLS)")
    broker_tls_key: str | None = Field(None, description="the client certificate's key file")
    broker_tls_insecure: bool = Field(
        False, description="skip the check of the broker's host name (test rigs only)"
    )
    partitions: str = Field("0-63", description="partitions to serve, e.g. 0-15,32")
    db: str = Field("sqlite:///var/qloop.db", description="ticket database URL (SQLAlchemy)")
    journal: str | None = Field(
        "var/journal.db",
        description="the worker's embedded store (SQLite); the API's charts read it when"
        " InfluxDB is not configured or cannot be read (empty: the API reads none)",
    )
    influx_url: str | None = Field(
        None, description="InfluxDB URL: the worker writes telemetry there, the charts read it"
    )
    influx_token: SecretStr | None = Field(None, description="InfluxDB token")
    influx_org: str = Field("", description="InfluxDB organisation")
    influx_bucket: str = Field("qloop", description="InfluxDB bucket")
    influx_query: Literal["auto", "flux", "victoriametrics"] = Field(
        "auto",
        description="how to query --influx-url: Flux (InfluxDB) or VictoriaMetrics' export API"
        " (auto: asked of its /health)",
    )
    checkpoint_db: str | None = Field(
        None,
        description="SQLAlchemy URL of a database the workers share for detector checkpoints,"
        " so a partition moved to a worker on another host resumes without relearning"
        " (default: the worker's own journal)",
    )
    client_id: str | None = Field(
        None, description="MQTT client id (default: derived from the partitions)"
    )
    queue_size: int = Field(
        10_000, ge=1, description="received messages waiting for the worker thread at most"
    )
    receiver: Literal["process", "thread"] = Field(
        "process",
        description="where the worker receives MQTT: in a child process that forwards messages"
        " and acknowledgements over a pipe (receiving and processing then run in parallel), or"
        " on paho's thread in the worker's process",
    )
    clock_tolerance_s: float = Field(
        ClockCheck().ahead_s,
        gt=0,
        description="readings stamped further ahead of the worker's clock are refused as clock"
        " skew (s)",
    )
    ready_file: str | None = Field(
        None,
        description="write this file once the worker's subscriptions are active (a readiness"
        " probe for scripts and orchestrators)",
    )
    metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="serve the worker's /metrics, /healthz and /readyz on this port, at --host"
        " (default: not served; 0: any free port, logged)",
    )
    journal_retention_days: float | None = Field(
        None,
        ge=1,
        description="delete journal messages received longer ago than this (days; at least 1:"
        " each unit's newest is kept, lost-seq counts stay); default: keep every message",
    )
    checkpoint_every_s: float = Field(
        30.0,
        gt=0,
        description="how often the worker saves its detectors' learned state (s): a restarted"
        " worker feeds its journal's messages since then again, a worker taking over the"
        " partitions on another host resumes from it",
    )
    duration: float | None = Field(
        None, ge=0, description="stop after S seconds (the demo: once its tickets are printed)"
    )
    # the API
    host: str = Field(
        "127.0.0.1", description="address the API (or a worker's --metrics-port) listens on"
    )
    port: int = Field(8000, ge=0, le=65535, description="port the API listens on")
    api_token: SecretStr | None = Field(None, description="bootstraps an administrator token")
    api_token_name: str = Field("admin", description="name of the bootstrapped token")
    # the ticket policy: batch statistics, grading, SLA clocks, verification, escalation
    alpha: float = Field(_POLICY.alpha, gt=0, lt=1, description="significance of the batch test")
    min_affected: int = Field(
        _POLICY.min_affected, ge=1, description="affected units a batch ticket needs at least"
    )
    correction: Literal["holm", "bh"] = Field(
        _POLICY.correction, description="multiple-testing correction across batches"
    )
    device_tickets: bool = Field(
        _POLICY.device_tickets, description="open device tickets for isolated faults"
    )
    min_unit_days: float = Field(
        _POLICY.min_unit_days, ge=0, description="unit-days a batch needs before it is judged"
    )
    background_rate_per_unit_day: float = Field(
        _POLICY.background_rate_per_unit_day,
        gt=0,
        description="alarm rate of healthy units: a model with no other batch is tested against"
        " it, and (with --background-too) every batch beside the rest of its model",
    )
    background_too: bool = Field(
        _POLICY.background_too,
        description="test each batch's alarms against the background rate as well as against"
        " its model's other batches (one correction over both)",
    )
    sla_ack_s: float = Field(
        _SLA.ack["normal"].total_seconds(), gt=0, description="acknowledge within (s)"
    )
    sla_containment_s: float = Field(
        _SLA.containment.total_seconds(), gt=0, description="urgent: in progress within (s)"
    )
    sla_cause_s: float = Field(
        _SLA.cause.total_seconds(), gt=0, description="cause and plan (resolved) within (s)"
    )
    sla_fix_s: float = Field(_SLA.fix.total_seconds(), gt=0, description="fix recorded within (s)")
    sla_verification_s: float = Field(
        _SLA.verification.total_seconds(), gt=0, description="verified within after the fix (s)"
    )
    sla_work_zone: str = Field(
        "Asia/Shanghai", description="time zone the team's working days are counted in"
    )
    sla_holidays: str | None = Field(
        None,
        description="file of public holidays and make-up working days, lines like"
        " '2026-10-01..2026-10-07 off' and '2026-10-10 work' (deploy/holidays/)",
    )
    verify_window_s: float = Field(
        _POLICY.verify_window_s,
        gt=0,
        description="event time a fixed unit has to clear its fault after the fix (s)",
    )
    sla_check_s: float = Field(60.0, gt=0, description="how often the API checks the SLA clocks")
    escalation_webhook: str | None = Field(
        None,
        description="URL that overdue tickets (once per stage) and repeated-complaint alerts are"
        " POSTed to (JSON)",
    )
    escalation_max_attempts: int = Field(
        8, ge=1, description="delivery attempts of an escalation (webhook and e-mail)"
    )
    escalation_retry_s: float = Field(
        60.0, gt=0, description="first delivery retry delay (s), then doubled"
    )
    rated_max_outdoor_c: float = Field(
        T1_MAX_OUTDOOR_C,
        description="the outdoor temperature the products are rated to run at (°C; ISO 5151 T1:"
        " 43): an overcurrent trip hotter than this is the design's limit, not a unit's fault,"
        " and opens no ticket (cloud/anomaly/envelope.py)",
    )
    rated_max_outdoor_models: str | None = Field(
        None,
        description="models rated otherwise: MODEL=°C pairs, e.g. 'KFR-72LW/T3=52'",
    )
    rated_max_indoor_c: float = Field(
        MAX_INDOOR_C,
        description="the return air temperature the products are rated to run at (°C; the"
        " maximum operating test's indoor side: 32): an overcurrent trip pulling down a hotter"
        " room is the design's limit, not a unit's fault, and opens no ticket",
    )
    alert_emails: str | None = Field(
        None,
        description="department heads: DEPARTMENT=ADDRESS pairs, * for the rest, e.g."
        " 'R&D=rd-head@example.com,*=quality-manager@example.com'; alerts name them and, with"
        " --smtp-host, are e-mailed to them",
    )
    smtp_host: str | None = Field(
        None, description="SMTP server that escalations and alerts are e-mailed through"
    )
    smtp_port: int = Field(25, ge=1, le=65535, description="port of the SMTP server")
    smtp_starttls: bool = Field(False, description="switch the SMTP connection to TLS first")
    smtp_user: str | None = Field(None, description="SMTP login, if the server wants one")
    smtp_password: SecretStr | None = Field(
        None, description="SMTP password (environment or config file only)"
    )
    smtp_from: str = Field("qloop@localhost", description="sender of the e-mails")
    # repeated complaints (cloud/ticketing/alerts.py)
    repeat_alert_window_s: float = Field(
        _POLICY.repeat_alert_window_s,
        gt=0,
        description="complaints received within this time of each other count together (s)",
    )
    repeat_alert_unit_min: int = Field(
        _POLICY.repeat_alert_unit_min,
        ge=2,
        description="complaints about one unit in the window that alert its department head",
    )
    repeat_alert_customer_min: int = Field(
        _POLICY.repeat_alert_customer_min,
        ge=2,
        description="complaints from one contact in the window that alert the department head",
    )
    repeat_alert_batch_min: int = Field(
        _POLICY.repeat_alert_batch_min,
        ge=2,
        description="units of one batch complaining about one problem in the window that alert"
        " the department head",
    )
    # the dashboard's quality targets (cloud/ticketing/targets.py)
    targets: str = Field(
        "",
        description="quality targets per figure, a department's own as DEPARTMENT.FIGURE, e.g."
        " 'collection>=0.95,completion>=0.9,satisfaction>=4.0,recurrence<=0.05,"
        "R&D.completion>=0.95' (what is left out keeps that default); a figure below target"
        " two ISO weeks running is alerted",
    )
    # people's feedback
    feedback_model: str | None = Field(
        None,
        description="feedback classifier file written by `qloop feedback retrain` (default:"
        " the shipped one)",
    )
    channel: str | None = Field(
        None, description="channel of imported rows that name none (hotline, ecommerce, ...)"
    )
    mapping: str | None = Field(
        None,
        description="import column mapping, field=header pairs: 'text=问题描述,contact=手机号'"
        " (default: headers recognised in English or Chinese)",
    )
    utc_offset: str = Field(
        "+00:00",
        pattern=r"^[+-](0\d|1[0-4]):[0-5]\d$",
        description="time zone of imported times written without one, e.g. +08:00",
    )
    # the demo
    scenario: str = Field("demo", description="built-in scenario name or TOML file")
    workdir: str = Field("var/demo", description="where the demo keeps its databases and logs")
    broker_port: int | None = Field(
        None, ge=1, le=65535, description="port of the demo's MQTT broker (default: a free one)"
    )
    # the simulator
    speed: float | None = Field(
        None,
        ge=0,
        description="simulated seconds per wall second (0: flat out; default: the scenario's)",
    )
    ground_truth: str | None = Field(None, description="write the injected faults to this JSON")
    client_prefix: str = Field("qloop-sim", description="MQTT client id prefix")
    connect_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="how long the simulator waits for the broker at start"
    )
    # evaluation
    seeds: int = Field(1, ge=1, description="independent fleets (seed, seed+1, ...)")
    first_seed: int | None = Field(
        None,
        ge=0,
        description="the first fleet's seed (default: the scenario's own; another gives fleets "
        "the detectors were not developed on)",
    )
    block_rows: int = Field(60, ge=1, description="readings per telemetry block")
    horizon: float = Field(48.0, gt=0, description="detection horizon in hours")
    json_path: str | None = Field(None, description="also write the report as JSON to this file")
    # operators' reports and tools
    since: date | None = Field(
        None, description="export tickets opened on or after this day, YYYY-MM-DD (UTC)"
    )
    until: date | None = Field(
        None, description="export tickets opened on or before this day, YYYY-MM-DD (UTC)"
    )
    month: str | None = Field(
        None,
        pattern=r"^\d{4}-\d{2}$",
        description="the report's month, YYYY-MM (UTC; default: the latest month with tickets)",
    )
    report_format: Literal["json", "html", "pdf"] = Field(
        "json", description="the report as JSON, one HTML page, or PDF"
    )
    report_lang: Literal["zh-CN", "en"] = Field(
        "zh-CN", description="the language of an HTML or PDF report: zh-CN or en"
    )
    latest: int = Field(10, ge=0, description="show this many of the latest dead letters")
    output: str | None = Field(None, description="output file (default: stdout)")
    config: str | None = Field(None, description="the edge agent's TOML config file")
    log_level: str = Field("INFO", description="logging level")

    @field_validator(*_PAIRS)
    @classmethod
    def _pairs(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value:
            _PAIRS[info.field_name](value)  # refused here, naming the option and its source
        return value

    @field_validator("targets")
    @classmethod
    def _targets(cls, value: str) -> str:
        Targets.parse(value)  # refused here, naming the option and where it came from
        return value

    def ticket_policy(self) -> TicketPolicy:
        """Batch statistics, grading, SLA clocks and verification as the options say."""
        from datetime import timedelta

        return TicketPolicy(
            alpha=self.alpha,
            min_affected=self.min_affected,
            correction=self.correction,
            device_tickets=self.device_tickets,
            min_unit_days=self.min_unit_days,
            background_rate_per_unit_day=self.background_rate_per_unit_day,
            background_too=self.background_too,
            sla=SlaPolicy(
                ack=dict.fromkeys(_SLA.ack, timedelta(seconds=self.sla_ack_s)),
                containment=timedelta(seconds=self.sla_containment_s),
                cause=timedelta(seconds=self.sla_cause_s),
                fix=timedelta(seconds=self.sla_fix_s),
                verification=timedelta(seconds=self.sla_verification_s),
                calendar=self._calendar(),
            ),
            verify_window_s=self.verify_window_s,
            repeat_alert_window_s=self.repeat_alert_window_s,
            repeat_alert_unit_min=self.repeat_alert_unit_min,
            repeat_alert_customer_min=self.repeat_alert_customer_min,
            repeat_alert_batch_min=self.repeat_alert_batch_min,
            department_heads=parse_recipients(self.alert_emails or ""),
        )

    def _calendar(self) -> WorkCalendar:
        """The working days the callback's deadline counts, from ``sla_holidays`` if given."""
        flag = f"--sla-holidays ({env_name('sla_holidays')})"
        try:
            if not self.sla_holidays:
                return WorkCalendar(self.sla_work_zone)
            text = Path(self.sla_holidays).read_text(encoding="utf-8")
            return parse_calendar(text, self.sla_work_zone)
        except OSError as e:
            raise SettingsError(f"{flag}: cannot read {self.sla_holidays}: {e.strerror}") from None
        except CalendarError as e:
            raise SettingsError(f"{flag} or --sla-work-zone: {e}") from None

    def _secret(self, value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value is not None else None

    def influx_target(self) -> InfluxTarget | None:
        """The InfluxDB the charts read, if any."""
        from cloud.store.readback import InfluxTarget

        if not self.influx_url:
            return None
        return InfluxTarget(
            self.influx_url,
            self._secret(self.influx_token) or "",
            self.influx_org,
            self.influx_bucket,
            self.influx_query,
        )

    def api(self) -> ApiConfig:
        """What :func:`cloud.ticketing.app.create_app` needs."""
        from cloud.ticketing.app import ApiConfig

        return ApiConfig(
            db=self.db,
            journal=self.journal or None,
            influx=self.influx_target(),
            policy=self.ticket_policy(),
            notifier=self.notifier(),
            api_token=self._secret(self.api_token),
            api_token_name=self.api_token_name,
            sla_check_s=self.sla_check_s,
            feedback_model=self.feedback_model,
            targets=Targets.parse(self.targets),
        )

    def notifier(self) -> Notifier | None:
        """Where escalations and alerts go: the webhook, e-mail, both, or nowhere."""
        from datetime import timedelta

        from cloud.ticketing.escalation import ANYONE, EmailNotifier, FanOut, WebhookNotifier

        attempts, retry = self.escalation_max_attempts, timedelta(seconds=self.escalation_retry_s)
        notifiers: list[Notifier] = []
        if self.escalation_webhook:
            notifiers.append(
                WebhookNotifier(self.escalation_webhook, max_attempts=attempts, retry_base=retry)
            )
        if self.smtp_host:
            heads = parse_recipients(self.alert_emails or "")
            if ANYONE not in heads:
                raise SettingsError(
                    "--alert-emails (QLOOP_ALERT_EMAILS): e-mail with --smtp-host needs a"
                    f" default, {ANYONE}=ADDRESS, for the departments it does not name"
                )
            try:
                email = EmailNotifier(
                    self.smtp_host,
                    heads,
                    sender=self.smtp_from,
                    port=self.smtp_port,
                    starttls=self.smtp_starttls,
                    user=self.smtp_user,
                    password=self._secret(self.smtp_password),
                    max_attempts=attempts,
                    retry_base=retry,
                )
            except ValueError as e:
                raise SettingsError(f"--smtp-from (QLOOP_SMTP_FROM): {e}") from None
            notifiers.append(email)
        if len(notifiers) > 1:
            return FanOut(tuple(notifiers), max_attempts=attempts, retry_base=retry)
        return notifiers[0] if notifiers else None

    def broker_address(self) -> BrokerAddress:
        """The broker and how to prove who we are to it: address, login and TLS files."""
        try:
            address = BrokerAddress.parse(
                self.broker,
                username=self.broker_username or None,
                password=self._secret(self.broker_password),
                tls_ca=self.broker_tls_ca or None,
                tls_cert=self.broker_tls_cert or None,
                tls_key=self.broker_tls_key or None,
                tls_insecure=self.broker_tls_insecure,
            )
        except ValueError as e:
            raise SettingsError(f"--broker ({env_name('broker')}): {e}") from None
        if address.password is not None and address.username is None:
            raise SettingsError(
                f"{env_name('broker_password')} is set but no --broker-username"
                f" ({env_name('broker_username')}) to go with it"
            )
        if address.tls_cert and not address.tls_ca:
            raise SettingsError(
                "--broker-tls-cert needs --broker-tls-ca (the CA that signed the broker's"
                " certificate)"
            )
        for name in ("broker_tls_ca", "broker_tls_cert", "broker_tls_key"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                flag = "--" + name.replace("_", "-")
                raise SettingsError(f"{flag} ({env_name(name)}): no file {path}")
        return address

    def worker(self) -> WorkerSettings:
        """What :class:`cloud.worker.Worker` needs."""
        from cloud.worker_settings import WorkerSettings
        from contract.protocol import parse_partitions

        if not self.journal:
            raise SettingsError("--journal (QLOOP_JOURNAL): a worker needs its journal")
        return WorkerSettings(
            broker=self.broker_address(),
            partitions=parse_partitions(self.partitions),
            db_url=self.db,
            journal_path=self.journal,
            influx_url=self.influx_url,
            influx_token=self._secret(self.influx_token),
            influx_org=self.influx_org,
            influx_bucket=self.influx_bucket,
            client_id=self.client_id,
            checkpoint_db=self.checkpoint_db,
            queue_size=self.queue_size,
            receiver=self.receiver,
            ticket_policy=self.ticket_policy(),
            clock_tolerance_s=self.clock_tolerance_s,
            rated_max_outdoor_c=self.rated_max_outdoor_c,
            rated_max_outdoor_models=parse_models(self.rated_max_outdoor_models or ""),
            rated_max_indoor_c=self.rated_max_indoor_c,
            checkpoint_every_s=self.checkpoint_every_s,
            journal_retention_s=(
                None if self.journal_retention_days is None else self.journal_retention_days * 86400
            ),
        )
