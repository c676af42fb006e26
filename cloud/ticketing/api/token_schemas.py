"""The API's token schemas (``/api/v1/tokens``): what an administrator sends to make a token and
what it gets back — the token itself once, and in the list never."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from cloud.ticketing.api.schemas import Body, Role, UTCTime

MAX_TTL_S = 10 * 366 * 86_400  # ten years: a longer-lived token is better without an expiry


class TokenCreate(Body):
    name: str = Field(min_length=1, max_length=64, description="unique: 409 if taken")
    role: Role = Role.VIEWER
    expires_at: AwareDatetime | None = Field(
        None,
        description="when the token stops working (ISO 8601 with a time zone); never if "
        "neither this nor ttl_s is given",
    )
    ttl_s: int | None = Field(None, ge=60, le=MAX_TTL_S, description="or: seconds from now")

    @model_validator(mode="after")
    def _one_expiry(self) -> TokenCreate:
        if self.expires_at is not None and self.ttl_s is not None:
            raise ValueError("give expires_at or ttl_s, not both")
        if self.expires_at is not None and not 2000 <= self.expires_at.year < 3000:
            raise ValueError("expires_at must be between 2000 and 3000")
        return self


class TokenPublic(BaseModel):
    name: str
    role: Role
    token: str = Field(description="shown once; only its digest is stored")
    expires_at: UTCTime | None = None


class TokenInfoPublic(BaseModel):
    """A token as an administrator sees it in the list: never the token itself."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    role: Role
    created_at: UTCTime
    expires_at: UTCTime | None
    bootstrap: bool = Field(description="the administrator token from QLOOP_API_TOKEN")


class TokensPublic(BaseModel):
    items: list[TokenInfoPublic]
