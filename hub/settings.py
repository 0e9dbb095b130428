"""Settings: read once at the edge, typed, frozen; nothing else reads `os.environ`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.base import Source

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SourceConfig(BaseModel):
    """One configured source system: adapter configuration plus the hub's deadline for it."""

    model_config = ConfigDict(frozen=True)

    url: str
    deadline_ms: int = Field(default=2000, gt=0)
    circuit_failures: int = Field(default=3, gt=0)
    circuit_reset_s: float = Field(default=10.0, gt=0)
    options: dict[str, Any] = Field(default_factory=dict)

    def adapter_config(self) -> dict[str, Any]:
        return {"url": self.url, "timeout_s": self.deadline_ms / 1000, **self.options}


class IssuerSetting(BaseModel):
    """A trusted token issuer: tokens are checked against its keys only."""

    model_config = ConfigDict(frozen=True)

    issuer: str
    audience: str = "mash-hub"
    jwks_url: str | None = None
    jwks_file: str | None = None
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    roles: tuple[str, ...] | None = None
    agencies: tuple[str, ...] | None = None


class Settings(BaseSettings):
    """Hub configuration from `MASH_*` environment variables.

    `MASH_SOURCES` and `MASH_ISSUERS` are JSON: `{"POLICE": {"url": ..., "deadline_ms": 2000}}`
    and `[{"issuer": ..., "audience": ..., "jwks_url": ...}]`.
    """

    model_config = SettingsConfigDict(env_prefix="MASH_", frozen=True)

    data_dir: Path = Path("var")
    database_url: str | None = None
    sources: dict[Source, SourceConfig] = Field(default_factory=dict)
    issuers: tuple[IssuerSetting, ...] = ()
    dev_issuer: bool = False
    policy_dir: Path = PROJECT_ROOT / "policies"
    request_deadline_ms: int = 5000
    # MASH contacts: hours to a decision by RAG rating. RED runs on the wall clock, day and
    # night; AMBER and GREEN count office hours only (`office_hours` on `office_days`, 0 =
    # Monday, in `timezone`).
    rag_hours: dict[str, float] = Field(
        default_factory=lambda: {"RED": 2.0, "AMBER": 6.0, "GREEN": 24.0}
    )
    office_hours: tuple[int, int] = (9, 17)
    office_days: tuple[int, ...] = (0, 1, 2, 3, 4)
    timezone: str = "Europe/London"
    break_glass_minutes: int = Field(default=60, gt=0)
    # The council team notified about a flagged child with no open contact assigned to a team.
    default_owning_team: str = "council-child-protection"

    @field_validator("sources", mode="before")
    @classmethod
    def _sources_from_json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("rag_hours")
    @classmethod
    def _every_rating_has_hours(cls, value: dict[str, float]) -> dict[str, float]:
        if set(value) != {"RED", "AMBER", "GREEN"} or min(value.values()) <= 0:
            raise ValueError("rag_hours needs positive hours for RED, AMBER and GREEN")
        return value

    @field_validator("office_hours")
    @classmethod
    def _office_hours_in_a_day(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 0 <= value[0] < value[1] <= 24:
            raise ValueError("office_hours is [opening hour, closing hour] within a day")
        return value

    @field_validator("office_days")
    @classmethod
    def _some_office_days(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or not set(value) <= set(range(7)):
            raise ValueError("office_days lists weekdays 0 (Monday) to 6, at least one")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("timezone must be an IANA name, e.g. Europe/London") from None
        return value

    @property
    def hub_database_url(self) -> str:
        """The hub store: PostgreSQL in production, else SQLite in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'hub.sqlite3').resolve()}"
