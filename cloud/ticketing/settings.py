"""Settings of the ticketing service and API, from ``QLOOP_*`` environment variables.

Nothing is read at import time: build ``Settings()`` where the process starts (the CLI) and pass
it to ``create_app(settings)``; tests construct their own.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from cloud.store.readback import InfluxTarget
from cloud.ticketing.escalation import WebhookNotifier
from cloud.ticketing.policy import TicketPolicy
from cloud.ticketing.sla import SlaPolicy

PRIORITIES = ("urgent", "normal", "low")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QLOOP_", extra="ignore")

    db: str = Field("sqlite:///qloop.db", description="SQLAlchemy URL of the ticket database")
    api_token: SecretStr | None = Field(
        None, description="bootstraps an administrator token (QLOOP_API_TOKEN)"
    )
    api_token_name: str = "admin"
    journal: str | None = Field(
        None, description="the worker's journal (SQLite) the pages' evidence charts read"
    )
    # where the worker writes telemetry (CONTRACTS.md §2); when set, the charts read it from there
    influx_url: str | None = Field(None, description="InfluxDB the pages' charts read, if set")
    influx_token: SecretStr | None = None
    influx_org: str = ""
    influx_bucket: str = "qloop"
    influx_query: Literal["auto", "flux", "victoriametrics"] = Field(
        "auto", description="query dialect of influx_url (auto: asked of its /health)"
    )
    alpha: float = Field(0.01, gt=0, lt=1, description="significance level of the batch test")
    min_affected: int = Field(3, ge=1, description="affected units a batch ticket needs at least")
    correction: Literal["holm", "bh"] = "holm"
    device_tickets: bool = True
    min_unit_days: float = Field(1.0, ge=0)
    background_rate_per_unit_day: float = Field(5e-4, gt=0)
    # SLA clocks (sla.py), wall-clock seconds
    sla_ack_s: float = Field(3600.0, gt=0, description="acknowledge within")
    sla_containment_s: float = Field(86_400.0, gt=0, description="urgent: in_progress within")
    sla_cause_s: float = Field(3 * 86_400.0, gt=0, description="cause and plan (resolved) within")
    sla_fix_s: float = Field(14 * 86_400.0, gt=0, description="fix recorded within")
    sla_verification_s: float = Field(48 * 3600.0, gt=0, description="verified within, after fix")
    verify_window_s: float = Field(
        48 * 3600.0, gt=0, description="event time a fixed unit has to clear after the fix"
    )
    sla_check_s: float = Field(60.0, gt=0, description="how often the API checks the SLA clocks")
    escalation_webhook: str | None = Field(
        None, description="URL that overdue tickets are POSTed to (JSON), once per stage"
    )
    escalation_max_attempts: int = Field(8, ge=1)
    escalation_retry_s: float = Field(60.0, gt=0, description="first retry delay (then doubled)")

    def notifier(self) -> WebhookNotifier | None:
        """The escalation webhook, if one is configured."""
        if not self.escalation_webhook:
            return None
        return WebhookNotifier(
            self.escalation_webhook,
            max_attempts=self.escalation_max_attempts,
            retry_base=timedelta(seconds=self.escalation_retry_s),
        )

    def influx_target(self) -> InfluxTarget | None:
        """The InfluxDB the evidence charts read, if one is configured."""
        if not self.influx_url:
            return None
        token = self.influx_token.get_secret_value() if self.influx_token else ""
        return InfluxTarget(
            self.influx_url, token, self.influx_org, self.influx_bucket, self.influx_query
        )

    def ticket_policy(self) -> TicketPolicy:
        return TicketPolicy(
            alpha=self.alpha,
            min_affected=self.min_affected,
            correction=self.correction,
            device_tickets=self.device_tickets,
            min_unit_days=self.min_unit_days,
            background_rate_per_unit_day=self.background_rate_per_unit_day,
            sla=SlaPolicy(
                ack=dict.fromkeys(PRIORITIES, timedelta(seconds=self.sla_ack_s)),
                containment=timedelta(seconds=self.sla_containment_s),
                cause=timedelta(seconds=self.sla_cause_s),
                fix=timedelta(seconds=self.sla_fix_s),
                verification=timedelta(seconds=self.sla_verification_s),
            ),
            verify_window_s=self.verify_window_s,
        )
