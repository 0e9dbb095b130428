"""Settings: read once at the edge, typed, frozen; nothing else reads `os.environ`."""

from __future__ import annotations

import functools
import json
from datetime import time
from pathlib import Path
from typing import Annotated, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

import adapters
from adapters.base import Source

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RUNNING_FILE = "hub.env"  # in the data folder: the running demo's configuration


def _declared_source(name: str) -> str:
    """A `MASH_SOURCES` key must name a source some adapter declares (as a `Source`)."""
    if name not in adapters.sources():
        raise ValueError(f"no adapter declares a source {name!r}: one of {adapters.sources()}")
    return Source(name)


# A declared source's name; the sources are data (adapters.declarations()), not an enum.
SourceKey = Annotated[str, AfterValidator(_declared_source)]


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
    """A trusted token issuer: tokens are checked against its keys only.

    With a `client_id` it is also where people sign in to the explorer and the IG page
    (OpenID Connect authorization code with PKCE; its endpoints are discovered from
    `<issuer>/.well-known/openid-configuration`). `client_secret` is for a confidential
    client (sent as HTTP Basic); `scopes` must ask for the claims the hub reads (`roles`,
    `agency`, `team`); `label` names the issuer on the sign-in page.
    """

    model_config = ConfigDict(frozen=True)

    issuer: str
    audience: str = "mash-hub"
    jwks_url: str | None = None
    jwks_file: str | None = None
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    roles: tuple[str, ...] | None = None
    agencies: tuple[str, ...] | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    scopes: tuple[str, ...] = ("openid",)
    label: str | None = None

    TOKEN_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"issuer", "audience", "jwks_url", "jwks_file", "algorithms", "roles", "agencies"}
    )

    def token_config(self) -> dict[str, Any]:
        """What bearer-token verification needs (`hub.auth.tokens.IssuerConfig`'s fields)."""
        return self.model_dump(include=set(self.TOKEN_FIELDS))

    @field_validator("scopes")
    @classmethod
    def _openid_scope(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if "openid" not in value:
            raise ValueError("scopes must include openid")
        return value


class PartnerSystem(BaseModel):
    """A partner system (a health trust's EPR, a police case system) known by its OAuth
    client id: its name for the audit log, and its limits where they differ from the
    defaults (`Settings.partner_*`). Configured as a plain name or as this object."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1, max_length=200)
    requests_per_minute: int | None = Field(default=None, gt=0)
    person_requests_per_minute: int | None = Field(default=None, gt=0)
    max_cost: int | None = Field(default=None, gt=0)


def partner_entries(value: Any) -> Any:
    """`{"client id": "Name"}` or `{"client id": {"name": ...}}` (JSON text or a dict)."""
    value = json.loads(value) if isinstance(value, str) else value
    if isinstance(value, dict):
        return {k: {"name": v} if isinstance(v, str) else v for k, v in value.items()}
    return value


@functools.cache
def holiday_calendar(name: str) -> holidays.HolidayBase | None:
    """The public holidays of `name` ("GB-ENG"; "none": no calendar); NotImplementedError
    for a country or subdivision the `holidays` package does not know."""
    if name.lower() == "none":
        return None
    country, _, subdivision = name.partition("-")
    return holidays.country_holidays(country, subdiv=subdivision or None)


class IgSettings(BaseModel):
    """Information governance: what the anomaly report counts as unusual.

    Office hours are local (`timezone`) wall-clock times on `office_days` (Monday = 0).
    A user's volume is "far above their usual" when their accesses in a report window reach
    `volume_floor` and exceed `volume_factor` times their rate over the `baseline_days`
    before it.
    """

    model_config = ConfigDict(frozen=True)

    timezone: str = "Europe/London"
    office_start: time = time(8, 0)
    office_end: time = time(18, 0)
    office_days: tuple[int, ...] = (0, 1, 2, 3, 4)
    volume_factor: float = Field(default=3.0, gt=1)
    volume_floor: int = Field(default=20, gt=0)
    baseline_days: int = Field(default=28, gt=0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("office_days")
    @classmethod
    def _weekdays(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not all(0 <= d <= 6 for d in value):
            raise ValueError("office_days are weekdays 0 (Monday) to 6 (Sunday)")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Settings(BaseSettings):
    """Hub configuration from `MASH_*` environment variables.

    `MASH_SOURCES` and `MASH_ISSUERS` are JSON: `{"POLICE": {"url": ..., "deadline_ms": 2000}}`
    and `[{"issuer": ..., "audience": ..., "jwks_url": ...}]`; so is `MASH_IG`
    (`{"office_start": "08:00", "office_end": "18:00", ...}`, see `IgSettings`).
    """

    model_config = SettingsConfigDict(env_prefix="MASH_", frozen=True)

    data_dir: Path = Path("var")
    database_url: str | None = None
    sources: dict[SourceKey, SourceConfig] = Field(default_factory=dict)
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
    # Public holidays the office clock skips: "COUNTRY" or "COUNTRY-SUBDIVISION" as the
    # `holidays` package knows them (GB-ENG, GB-WLS, GB-SCT, GB-NIR), or "none".
    bank_holidays: str = "GB-ENG"
    timezone: str = "Europe/London"
    break_glass_minutes: int = Field(default=60, gt=0)
    # Browser sessions (the explorer, the IG page): a signed cookie that lapses after
    # `session_idle_minutes` without a request and is renewed by each one, up to
    # `session_max_hours` after sign-in. Its key is kept in the data folder unless
    # `session_key_file` names one (hubs behind one load balancer share it).
    session_idle_minutes: int = Field(default=15, gt=0)
    session_max_hours: float = Field(default=8.0, gt=0)
    session_key_file: Path | None = None
    # The explorer's browser files (React, GraphiQL, its explorer plugin): `npm ci` here.
    web_dir: Path = PROJECT_ROOT / "web"
    # The council team notified about a flagged child with no open contact assigned to a team.
    default_owning_team: str = "council-child-protection"
    # A large shared address (a hostel, a block recorded without flat numbers): a child's
    # home where sources record more than `household_max_residents` people whom no source
    # relates to the child, or more than `household_max_family_names` families among them
    # (family names sharing no part with each other or the child's). Its residents are not
    # household members, and their records are not read, until an analyst confirms them.
    # The defaults let a real family through (two parents and four children; a blended
    # family has two family names besides the child's) and stop a hostel or a block.
    household_max_residents: int = Field(default=6, ge=1)
    household_max_family_names: int = Field(default=2, ge=1)
    # Audit integrity (hub.audit.sequencer, hub.audit.checkpoints, hub.audit.retention):
    audit_sequencer: bool = True
    audit_sequencer_interval_s: float = Field(default=0.5, gt=0)
    audit_checkpoint_interval_s: float = Field(default=60.0, gt=0)
    audit_checkpoint_dir: Path | None = None
    audit_key_file: Path | None = None
    # Retention in days per event class `<operation type>.<outcome>` (shell-style patterns,
    # first match wins; no match: kept), e.g. {"*.invalid": 90, "query.*": 2557}.
    audit_retention_days: dict[str, int] = Field(default_factory=dict)

    @field_validator("audit_retention_days", mode="before")
    @classmethod
    def _retention_from_json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("audit_retention_days")
    @classmethod
    def _retention_positive(cls, value: dict[str, int]) -> dict[str, int]:
        for pattern, days in value.items():
            if days < 1:
                raise ValueError(f"retention for {pattern!r} must be at least 1 day")
        return value

    ig: IgSettings = Field(default_factory=IgSettings)
    # Tracing (hub.telemetry.tracing): spans go over OTLP/HTTP only when an endpoint is set, here
    # (MASH_OTLP_ENDPOINT, the collector's base URL) or by the standard OpenTelemetry
    # variables; the signal path `/v1/traces` is added to a base URL, as the standard says.
    otlp_endpoint: str | None = None
    otel_traces_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )
    otel_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT")
    )

    # Partner systems (hub/partners/gate.py): OAuth client id -> name (or `PartnerSystem`), from
    # `MASH_PARTNER_SYSTEMS` JSON and/or the JSON file `MASH_PARTNER_SYSTEMS_FILE`.
    partner_systems: dict[str, PartnerSystem] = Field(default_factory=dict)
    partner_systems_file: Path | None = None
    # The operations each partner may run: `<client id>.json` persisted query manifests.
    trusted_documents_dir: Path = PROJECT_ROOT / "gateway" / "trusted-documents"
    # Federation routers (hub/partners/routers.py): the OAuth client ids of the gateways trusted to
    # enforce partners' trusted documents at their edge, as a JSON list. A request with such
    # a router's own client-credentials token in `X-Router-Authorization` skips the hub's
    # document check (never its limits, policy or audit).
    router_clients: tuple[str, ...] = ()
    # Limits on partner traffic, per client system and per person behind it, in requests
    # per `partner_rate_window_s`, and the most a query may cost (hub/serving/cost.py). In-process
    # counters: with several workers each keeps its own.
    partner_requests_per_minute: int = Field(default=600, gt=0)
    partner_person_requests_per_minute: int = Field(default=120, gt=0)
    partner_rate_window_s: float = Field(default=60.0, gt=0)
    partner_max_cost: int = Field(default=500, gt=0)
    # What a list field without `first`/`last`/`limit` counts for in a query's cost.
    partner_default_list_size: int = Field(default=10, gt=0)

    @field_validator("partner_systems", mode="before")
    @classmethod
    def _partners_from_json(cls, value: Any) -> Any:
        return partner_entries(value)

    @property
    def partners(self) -> dict[str, PartnerSystem]:
        """Every partner system: the file's, then `partner_systems` (which wins)."""
        if self.partner_systems_file is None:
            return dict(self.partner_systems)
        try:
            raw = json.loads(self.partner_systems_file.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"MASH_PARTNER_SYSTEMS_FILE is not readable JSON: {type(exc).__name__}"
            ) from None
        if not isinstance(raw, dict):
            raise ValueError("MASH_PARTNER_SYSTEMS_FILE must hold a JSON object")
        return {
            **{k: PartnerSystem.model_validate(v) for k, v in partner_entries(raw).items()},
            **self.partner_systems,
        }

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

    @field_validator("bank_holidays")
    @classmethod
    def _known_calendar(cls, value: str) -> str:
        if value.lower() != "none":
            try:
                holiday_calendar(value)
            except NotImplementedError:
                raise ValueError(
                    f"unknown bank holiday calendar {value!r}: use COUNTRY or "
                    "COUNTRY-SUBDIVISION as the holidays package names them (GB-ENG), or none"
                ) from None
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
    def audit_checkpoints(self) -> Path:
        """Signed checkpoint files: outside the database, in the data folder by default."""
        return self.audit_checkpoint_dir or self.data_dir / "audit-checkpoints"

    @property
    def audit_signing_key(self) -> Path:
        """The Ed25519 checkpoint key (its public half beside it, `.pub`)."""
        return self.audit_key_file or self.data_dir / "audit-signing-key.pem"

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """The settings every command runs with: the environment, then `RUNNING_FILE` in the
        data folder where one exists (`mash-hub demo` writes its sources there while it
        runs, so `mash-hub sources check` and the other commands see what the hub serves);
        the environment wins over the file, `overrides` over both."""
        first = cls(**overrides)
        running = first.data_dir / RUNNING_FILE
        if not running.is_file():
            return first
        return cls(_env_file=running, **overrides)

    def write_running(self, **values: Any) -> Path:
        """Write `values` (settings by field name) to `RUNNING_FILE` as MASH_* lines."""
        lines = [
            f"MASH_{name.upper()}='{json.dumps(value) if not isinstance(value, str) else value}'"
            for name, value in values.items()
        ]
        path = self.data_dir / RUNNING_FILE
        path.write_text("# written by mash-hub demo while it runs\n" + "\n".join(lines) + "\n")
        return path

    @property
    def traces_endpoint(self) -> str | None:
        """Where spans are exported (a full URL), or None: tracing records nothing."""
        if self.otlp_endpoint:
            return _signal_url(self.otlp_endpoint)
        if self.otel_traces_endpoint:
            return self.otel_traces_endpoint
        if self.otel_endpoint:
            return _signal_url(self.otel_endpoint)
        return None

    @property
    def session_signing_key(self) -> Path:
        """The EC P-256 key that signs browser sessions (private; JWKS beside it)."""
        return self.session_key_file or self.data_dir / "session-key.jwk.json"

    @property
    def login_issuers(self) -> tuple[IssuerSetting, ...]:
        """The issuers people sign in through (those with a `client_id`)."""
        return tuple(i for i in self.issuers if i.client_id)

    @property
    def hub_database_url(self) -> str:
        """The hub store: PostgreSQL in production, else SQLite in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'hub.sqlite3').resolve()}"


def _signal_url(base: str) -> str:
    """The traces URL under an OTLP/HTTP base URL (`http://collector:4318` ->
    `http://collector:4318/v1/traces`)."""
    return base if base.rstrip("/").endswith("/v1/traces") else base.rstrip("/") + "/v1/traces"
