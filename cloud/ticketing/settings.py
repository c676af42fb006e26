"""Settings of the ticketing service and API, from ``QLOOP_*`` environment variables.

Nothing is read at import time: build ``Settings()`` where the process starts (the CLI) and pass
it to ``create_app(settings)``; tests construct their own.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from cloud.ticketing.policy import TicketPolicy


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QLOOP_", extra="ignore")

    db: str = Field("sqlite:///qloop.db", description="SQLAlchemy URL of the ticket database")
    api_token: SecretStr | None = Field(
        None, description="bootstraps an administrator token (QLOOP_API_TOKEN)"
    )
    api_token_name: str = "admin"
    alpha: float = Field(0.01, gt=0, lt=1, description="significance level of the batch test")
    min_affected: int = Field(3, ge=1, description="affected units a batch ticket needs at least")
    correction: Literal["holm", "bh"] = "holm"
    device_tickets: bool = True
    min_unit_days: float = Field(1.0, ge=0)
    background_rate_per_unit_day: float = Field(5e-4, gt=0)

    def ticket_policy(self) -> TicketPolicy:
        return TicketPolicy(
            alpha=self.alpha,
            min_affected=self.min_affected,
            correction=self.correction,
            device_tickets=self.device_tickets,
            min_unit_days=self.min_unit_days,
            background_rate_per_unit_day=self.background_rate_per_unit_day,
        )
