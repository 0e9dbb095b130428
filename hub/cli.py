"""`mash-hub`: the command line (DESIGN.md, public contract)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from .auth import devissuer
from .settings import RUNNING_FILE, Settings
from .telemetry import logs, metrics

app = typer.Typer(
    help="MASH Hub: one unified child record, policy-checked and audited.",
    no_args_is_help=True,
    add_completion=False,
)
sources_app = typer.Typer(help="Source systems.", no_args_is_help=True)
policy_app = typer.Typer(help="Information-sharing policies.", no_args_is_help=True)
app.add_typer(sources_app, name="sources")
app.add_typer(policy_app, name="policy")

DEMO_HOUSEHOLDS = 300  # as hub.demo.stack: the demo's own seeding
DEMO_SEED = 7


def _settings(announce: bool = False, **overrides: Any) -> Settings:
    """The settings (`Settings.load`); `announce`: say so when a running demo's file is
    read, e.g. before serving with it."""
    try:
        settings = Settings.load(**overrides)
        running = settings.data_dir / RUNNING_FILE
        if announce and running.is_file():
            typer.echo(f"configuration: the environment and {running}", err=True)
        return settings
    except Exception as exc:  # pydantic's message names the bad setting
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def token(
    role: Annotated[
        str | None, typer.Option(help=f"One of: {', '.join(sorted(devissuer.ROLES))}")
    ] = None,
    agency: Annotated[str | None, typer.Option(help="Agency claim (default: by role).")] = None,
    sub: Annotated[str | None, typer.Option(help="Subject (user) name.")] = None,
    team: Annotated[str | None, typer.Option(help="Team claim.")] = None,
    client: Annotated[
        str, typer.Option(help="Client system (azp claim), e.g. a partner system's id.")
    ] = devissuer.DEV_CLIENT,
    machine: Annotated[
        bool,
        typer.Option(help="A client-credentials token for --client (no person, no role)."),
    ] = False,
) -> None:
    """Print a token from the local development issuer (demo and dev mode only): a person's
    in --role, or with --machine the client's own (a partner system's or a router's)."""
    settings = _settings()
    try:
        if machine:
            token = devissuer.mint_machine(settings.data_dir, client)
        elif role is None:
            raise ValueError("give --role ROLE (a person's token) or --machine --client ID")
        else:
            token = devissuer.mint(
                settings.data_dir, role, agency=agency, sub=sub, team=team, client=client
            )
        typer.echo(token)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@app.command()
def migrate() -> None:
    """Bring the hub store's schema up to date."""
    from .store.engine import migrate as run

    settings = _settings()
    run(settings.hub_database_url)
    typer.echo("hub store migrated")


@app.command()
def seed(
    households: Annotated[int, typer.Option(min=1)] = DEMO_HOUSEHOLDS,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same data.")] = DEMO_SEED,
    store_url: Annotated[
        list[str] | None,
        typer.Option(
            help="STORE=URL: a SQL source's demo database, e.g. a PostgreSQL URL (repeat for "
            "each; default: SQLite files in the data folder)."
        ),
    ] = None,
) -> None:
    """Fill the demo source systems from the synthetic population generator."""
    from .demo import sources

    settings = _settings()
    try:
        urls = sources.store_urls(store_url or [])
    except ValueError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    started = time.perf_counter()
    counts = sources.seed(settings.data_dir, households, seed, urls, progress=True)
    typer.echo(f"seeded in {time.perf_counter() - started:.1f} s")
    typer.echo(json.dumps(counts, indent=2, default=str))


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1, help="Worker processes on one port (more than one: PostgreSQL store only)."
        ),
    ] = 1,
) -> None:
    """Serve the hub with the sources and issuers from configuration (MASH_* variables)."""
    import uvicorn

    from .app import FACTORY, create_app, prepare_shared_keys

    settings = _settings(announce=True)
    if not settings.issuers and not settings.dev_issuer:
        typer.echo("configuration error: no trusted issuer (set MASH_ISSUERS)", err=True)
        raise typer.Exit(2)
    if workers == 1:
        app = create_app(settings)
        uvicorn.run(app, host=host, port=port, log_config=logs.config("info"))
        return
    from sqlalchemy.engine import make_url

    if make_url(settings.hub_database_url).get_backend_name() != "postgresql":
        # The embedded store has one writer per process and its sequencer assumes it is the
        # only process: several workers on one SQLite file would fork the audit chain.
        typer.echo(
            f"configuration error: --workers {workers} needs a PostgreSQL hub store "
            "(set MASH_DATABASE_URL=postgresql://...); the embedded SQLite store serves "
            "one process",
            err=True,
        )
        raise typer.Exit(2)
    prepare_shared_keys(settings)
    # uvicorn binds the port once and spawns the workers; each builds its own app from the
    # same environment (FACTORY), configures the same JSON logging and writes its metrics
    # where every worker's scrape reads them all (hub.telemetry.metrics).
    with metrics.shared_by_workers():
        uvicorn.run(
            FACTORY,
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_config=logs.config("info"),
        )


@app.command()
def demo(port: Annotated[int, typer.Option(help="Port for the hub.")] = 8000) -> None:
    """Start the demo: synthetic sources on loopback, the hub with the embedded store, the
    explorer, and the local development issuer. Ctrl-C stops everything it started."""
    import uvicorn

    from .app import create_app
    from .demo.stack import demo_sources

    base = _settings()
    with demo_sources(base.data_dir, say=typer.echo) as config, _running(base, config):
        settings = _settings(sources=config, dev_issuer=True)
        devissuer.ensure_keys(settings.data_dir)
        typer.echo(
            f"\nMASH Hub demo\n"
            f"  explorer:  http://127.0.0.1:{port}/graphql\n"
            f"             (sign in with one click as a demo role; the walk-through is in\n"
            f"             its tabs: 1 FindChild finds Ava Thompson, born 2016-03-14)\n"
            f"  API token: .venv/bin/mash-hub token --role mash_social_worker\n"
            f"             (for curl and partner systems: Authorization: Bearer <token>)\n"
            f"  store:     {settings.hub_database_url}\n"
            f"  stop:      Ctrl-C\n"
        )
        # uvicorn shuts down on SIGTERM, then raises it again once its own handlers are gone:
        # turned into SystemExit here, so the sources above are stopped, not orphaned.
        signal.signal(signal.SIGTERM, _exit_on_signal)
        app = create_app(settings)
        uvicorn.run(app, host="127.0.0.1", port=port, log_config=logs.config("warning"))


@contextlib.contextmanager
def _running(settings: Settings, sources: dict[str, Any]) -> Iterator[None]:
    """The demo's configuration in the data folder while it runs (see `Settings.load`)."""
    path = settings.write_running(sources=sources, dev_issuer="true")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


@sources_app.command("check")
def sources_check() -> None:
    """For each configured source: reachable, authenticated, latency and record count.
    Exit 1 if any is unhealthy."""
    from adapters.base import PersonQuery, SourceError, SupportsProbe

    from .app import build_adapters

    settings = _settings(announce=True)
    if not settings.sources:
        typer.echo(
            "no sources configured (set MASH_SOURCES, or start `mash-hub demo` with this "
            "data folder)",
            err=True,
        )
        raise typer.Exit(2)

    async def check() -> bool:
        healthy = True
        typer.echo(f"{'source':<18} {'state':<34} {'latency':>9} {'records':>10}")
        for source, adapter in build_adapters(settings).items():
            started = time.perf_counter()
            count: int | None = None
            try:
                async with asyncio.timeout(settings.sources[source].deadline_ms / 1000):
                    if isinstance(adapter, SupportsProbe):
                        probed = await adapter.probe()
                        count = probed.record_count
                    else:
                        await adapter.search(PersonQuery(nhs_number="0000000000"))
                state = "ok (reachable, authenticated)"
            except TimeoutError:
                state, healthy = "unhealthy: no answer within deadline", False
            except SourceError as exc:
                state, healthy = f"unhealthy: {type(exc).__name__} ({exc.action})", False
            finally:
                await adapter.aclose()
            ms = (time.perf_counter() - started) * 1000
            records = "-" if count is None else str(count)
            typer.echo(f"{source.value:<18} {state:<34} {ms:7.1f}ms {records:>10}")
        return healthy

    if not asyncio.run(check()):
        raise typer.Exit(1)


@policy_app.command("test")
def policy_test() -> None:
    """Run every policy decision table; exit 1 on a failing row."""
    from .policy.engine import PolicyEngine, run_tables

    settings = _settings()
    failures, total = run_tables(PolicyEngine(settings.policy_dir), settings.policy_dir)
    for failure in failures:
        typer.echo(f"FAIL {failure}", err=True)
    typer.echo(f"{total - len(failures)}/{total} decision-table rows pass")
    if failures:
        raise typer.Exit(1)


@policy_app.command("explain")
def policy_explain(
    role: Annotated[list[str], typer.Option(help="The actor's role (repeat for several).")],
    purpose: Annotated[str, typer.Option(help="Purpose of use, e.g. MASH_RESEARCH.")],
    agency: Annotated[str | None, typer.Option(help="The actor's agency.")] = None,
    team: Annotated[str | None, typer.Option(help="The actor's team.")] = None,
    stage: Annotated[
        str | None, typer.Option(help="Contact stage (SCREENING, RESEARCH, ...); none: no contact.")
    ] = None,
    assigned: Annotated[bool, typer.Option(help="The actor works the contact.")] = True,
    consent: Annotated[
        str | None, typer.Option(help="Consent on the contact (GIVEN, ...).")
    ] = None,
    consent_scope: Annotated[
        list[str] | None, typer.Option(help="An agency the consent covers (repeat).")
    ] = None,
    override: Annotated[bool, typer.Option(help="A manager's override is active.")] = False,
    decision: Annotated[str | None, typer.Option(help="Threshold decision, e.g. S47.")] = None,
    strategy_discussion: Annotated[
        bool, typer.Option(help="A manager recorded an s47 strategy discussion.")
    ] = False,
    break_glass: Annotated[bool, typer.Option(help="An active break-glass grant.")] = False,
    rule: Annotated[
        str | None, typer.Option(help="A yes/no rule to ask instead, e.g. decide_link.")
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option(help="Record class: AGENCY.section or an item kind a source declares."),
    ] = None,
    resource_agency: Annotated[
        str | None, typer.Option(help="The record's agency (default: from --kind).")
    ] = None,
    field: Annotated[str | None, typer.Option(help="A field of the record, e.g. text.")] = None,
    handling_code: Annotated[
        str | None, typer.Option(help="Intelligence handling code P or C.")
    ] = None,
    category: Annotated[
        list[str] | None, typer.Option(help="A special category label (repeat).")
    ] = None,
    investigation_sensitive: Annotated[bool, typer.Option()] = False,
    location_protected: Annotated[bool, typer.Option()] = False,
    source_consent: Annotated[
        str | None, typer.Option(help="Consent recorded on the record itself (early help).")
    ] = None,
    flag: Annotated[
        list[str] | None, typer.Option(help="A record flag, e.g. contact_subject (repeat).")
    ] = None,
) -> None:
    """Print the decision on one question and the rules that made it."""
    from .policy.engine import PolicyEngine, case_request, case_resource

    contact: dict[str, Any] = {}
    if stage or break_glass:
        contact = {
            "stage": stage,
            "assigned": assigned and stage is not None,
            "consent": consent,
            "consent_scope": consent_scope or [],
            "override": override,
            "decision": decision,
            "strategy_discussion": strategy_discussion,
            "break_glass": break_glass,
        }
    case: dict[str, Any] = {
        "roles": role,
        "agency": agency,
        "team": team,
        "purpose": purpose,
        "contact": contact,
    }
    resource = None
    if kind:
        resource = case_resource(
            {
                "kind": kind,
                "agency": resource_agency or kind.partition(".")[0],
                "handling_code": handling_code,
                "special_categories": category or [],
                "investigation_sensitive": investigation_sensitive,
                "location_protected": location_protected,
                "consent": source_consent,
                "flags": flag or [],
            }
        )
    settings = _settings()
    engine = PolicyEngine(settings.policy_dir)
    answer = engine.explain(case_request(case), resource, field, rule)
    typer.echo(f"decision: {answer.outcome}")
    for why in answer.rules:
        typer.echo(f"because:  {why}")


@app.command("export-schema")
def export_schema(
    check: Annotated[bool, typer.Option(help="Exit 1 if the checked-in SDL differs.")] = False,
) -> None:
    """Write the GraphQL SDL to schema/hub.graphql."""
    from schema import SDL_PATH, sdl

    if check:
        if not SDL_PATH.exists() or SDL_PATH.read_text() != sdl():
            typer.echo("schema/hub.graphql is out of date: run mash-hub export-schema", err=True)
            raise typer.Exit(1)
        return
    SDL_PATH.write_text(sdl())
    typer.echo(f"wrote {SDL_PATH}")


@app.command("trusted-documents")
def trusted_documents(
    check: Annotated[bool, typer.Option(help="Exit 1 if a checked-in manifest differs.")] = False,
) -> None:
    """Regenerate each partner's persisted query manifest, `<client id>.json`, from the
    .graphql files in `<client id>/` under the trusted-documents folder
    (MASH_TRUSTED_DOCUMENTS_DIR, default gateway/trusted-documents)."""
    from schema import schema

    from .partners.supergraph import gateway_schema, subgraph_sdls
    from .partners.trusted import ManifestError, build_all

    folder = _settings().trusted_documents_dir
    try:
        gateway = gateway_schema(schema._schema, subgraph_sdls())
        manifests = build_all(folder, schema._schema, gateway)
    except (ManifestError, OSError) as exc:
        typer.echo(f"trusted documents: {exc}", err=True)
        raise typer.Exit(2) from None
    stale = [p for p, text in manifests.items() if not p.is_file() or p.read_text() != text]
    if check:
        for path in stale:
            typer.echo(f"{path} is out of date: run mash-hub trusted-documents", err=True)
        raise typer.Exit(1 if stale else 0)
    for path in stale:
        path.write_text(manifests[path])
        typer.echo(f"wrote {path}")


@app.command()
def link(
    left: Annotated[str, typer.Option(help="CSV: id,given_name,family_name,date_of_birth,...")],
    right: Annotated[str, typer.Option(help="CSV with the same columns.")],
    out: Annotated[str, typer.Option(help="Pairs written: left_id,right_id,band,score.")],
    threshold_review: Annotated[
        float | None, typer.Option(help="Match weight (log2) from which a pair is reviewed.")
    ] = None,
    threshold_auto: Annotated[
        float | None, typer.Option(help="Match weight (log2) from which a pair is linked.")
    ] = None,
    weights: Annotated[
        str | None, typer.Option(help="Trained weights (default: the shipped ones).")
    ] = None,
    train: Annotated[
        bool,
        typer.Option(
            "--train",
            help="Estimate the weights on the two files themselves (EM, no ground truth).",
        ),
    ] = False,
    one_to_one: Annotated[
        bool,
        typer.Option(
            "--one-to-one",
            help="Neither file holds a person twice: link each record's clear best candidate.",
        ),
    ] = False,
    date_format: Annotated[
        str | None,
        typer.Option(
            help="How dates of birth are written, as strptime codes (e.g. %d/%m/%Y); "
            "default YYYY-MM-DD only."
        ),
    ] = None,
    rejects: Annotated[
        str | None,
        typer.Option(help="Rejected rows written: file,line,reason (default: OUT.rejects.csv)."),
    ] = None,
    accept_rejects: Annotated[
        bool,
        typer.Option("--accept-rejects", help="Exit 0 even when rows were rejected."),
    ] = False,
) -> None:
    """Batch-link two CSV files of people (columns id, given_name, family_name,
    date_of_birth, sex, postcode, nhs_number, and optionally address; empty = unknown).
    Writes one row per linked pair, one-to-one, with band auto or review and the match
    weight as score. A row that cannot be read as written (a date not in the expected
    format or not a real date, a wrong number of fields, broken quoting, a repeated id) is
    not guessed at: it goes to the rejects file with its line and reason, and the command
    exits 1 unless --accept-rejects."""
    from pathlib import Path

    from rich.progress import Progress

    from .identity import linkage, linkfile

    left_path, right_path, out_path = Path(left), Path(right), Path(out)
    rejects_path = Path(rejects) if rejects else out_path.with_suffix(".rejects.csv")

    started = time.perf_counter()
    try:
        model = linkage.load_model(Path(weights) if weights else None).with_thresholds(
            threshold_auto, threshold_review
        )
        left_file = linkfile.read(left_path, date_format)
        right_file = linkfile.read(right_path, date_format)
    except linkfile.LinkInputError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except (OSError, ValueError, KeyError) as exc:
        typer.echo(f"error: weights file cannot be used ({type(exc).__name__})", err=True)
        raise typer.Exit(2) from None
    if model.review > model.auto:
        typer.echo("error: the review threshold is above the auto threshold", err=True)
        raise typer.Exit(2)
    left_records, right_records = left_file.records, right_file.records
    with Progress(transient=True) as progress:
        task = progress.add_task("scoring candidate pairs", total=None)
        pairs, candidates = linkage.link(
            left_records,
            right_records,
            model,
            lambda done, total: progress.update(task, completed=done, total=total),
            train=train,
            one_to_one=one_to_one,
        )
    rejected = left_file.rejects + right_file.rejects
    written = out_path
    try:
        linkage.write_pairs(out_path, left_records, right_records, pairs)
        written = rejects_path
        if rejected or rejects_path.exists():  # never leave an older run's rejects beside
            linkfile.write_rejects(rejects_path, rejected)
    except OSError as exc:
        typer.echo(f"error: {written.name} cannot be written ({type(exc).__name__})", err=True)
        raise typer.Exit(2) from None
    auto = sum(1 for p in pairs if p.band == linkage.AUTO)
    review = len(pairs) - auto
    typer.echo(
        f"left: rows {left_file.rows}, read {len(left_records)}, "
        f"rejected {len(left_file.rejects)}\n"
        f"right: rows {right_file.rows}, read {len(right_records)}, "
        f"rejected {len(right_file.rejects)}\n"
        f"linked {len(pairs)} (auto {auto}, review {review}); "
        f"unmatched left {len(left_records) - len(pairs)}, "
        f"unmatched right {len(right_records) - len(pairs)}; candidate pairs {candidates}\n"
        f"thresholds: auto {model.auto:g}, review {model.review:g}; "
        f"{time.perf_counter() - started:.1f} s; wrote {out_path}"
        + (f" and {len(rejected)} rejected row(s) to {rejects_path}" if rejected else "")
    )
    if rejected and not accept_rejects:
        typer.echo(
            f"error: {len(rejected)} row(s) rejected, listed with line and reason in "
            f"{rejects_path} (fix them, give --date-format, or pass --accept-rejects)",
            err=True,
        )
        raise typer.Exit(1)


# --- audit (issue 6): integrity (verify, purge); exports join this group -------------------

audit_app = typer.Typer(help="The audit log: integrity checks and retention.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Processes rebuilding the chain (default: by log size, CPUs)."),
    ] = None,
) -> None:
    """Rebuild the audit chain from the database and check it against the signed
    checkpoints. Exit 0 when intact; 1 naming the first bad event when not."""
    from .audit.checkpoints import load_public_key
    from .audit.verify import verify
    from .store.engine import Store

    settings = _settings()
    try:
        public = load_public_key(settings.audit_signing_key)
    except (OSError, ValueError) as exc:
        typer.echo(f"error: no usable audit public key ({type(exc).__name__})", err=True)
        raise typer.Exit(2) from None

    async def run() -> Any:
        store = Store(settings.hub_database_url)
        try:
            return await verify(store, settings.audit_checkpoints, public, workers)
        finally:
            await store.aclose()

    report = asyncio.run(run())
    if not report.ok:
        typer.echo(f"AUDIT LOG NOT INTACT: {report.finding}", err=True)
        raise typer.Exit(1)
    rate = report.chained / report.seconds * 60 if report.seconds else 0.0
    typer.echo(
        f"audit log intact: {report.chained} events chained ({report.purged} purged under "
        f"signed purge records), {report.checkpoints} signed checkpoints up to seq "
        f"{report.signed_seq}, {report.unsigned_tail} after the last checkpoint, "
        f"{report.unsequenced} not yet sequenced; {report.seconds:.2f} s ({rate:,.0f}/min)"
    )
    for note in report.notes:
        typer.echo(f"note: {note}")


@audit_app.command("purge")
def audit_purge() -> None:
    """Delete events past their retention (MASH_AUDIT_RETENTION_DAYS, per event class),
    signing a purge record first so that `audit verify` keeps passing."""
    from .audit.checkpoints import load_or_create_key
    from .audit.retention import purge
    from .store.engine import Store

    settings = _settings()
    if not settings.audit_retention_days:
        typer.echo("no retention configured (MASH_AUDIT_RETENTION_DAYS): nothing purged")
        return
    key = load_or_create_key(settings.audit_signing_key)

    async def run() -> dict[str, int]:
        store = Store(settings.hub_database_url)
        try:
            return await purge(
                store, settings.audit_retention_days, settings.audit_checkpoints, key
            )
        finally:
            await store.aclose()

    counts = asyncio.run(run())
    total = sum(counts.values())
    detail = ", ".join(f"{pattern}: {n}" for pattern, n in counts.items()) or "none due"
    typer.echo(f"purged {total} audit events ({detail})")


def _moment(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        typer.echo(f"error: --{name} must be an ISO date or date-time", err=True)
        raise typer.Exit(2) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@audit_app.command("export")
def audit_export(
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="jsonl, csv, or fhir (FHIR R4 AuditEvent, IHE BALP, one per line)."
        ),
    ] = "jsonl",
    since: Annotated[
        str | None, typer.Option(help="Events from this ISO date/time on (UTC unless given).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Events before this ISO date/time.")] = None,
    subject: Annotated[
        str | None,
        typer.Option(help="Only events about this person (hub id): a subject access request."),
    ] = None,
    actor: Annotated[
        str | None, typer.Option(help="Only events by this user (token subject).")
    ] = None,
    out: Annotated[
        str | None, typer.Option(help="File to write (default: standard output).")
    ] = None,
) -> None:
    """Export the audit log. The export is itself audited (purpose IG_AUDIT, naming the
    person or user asked about) before any event is written out; if that fails, nothing is
    exported."""
    import getpass
    import os
    import sys
    from pathlib import Path

    from .audit.events import AuditNotes, AuditUnavailable, AuditWriter
    from .auth.tokens import Actor
    from .ig import export
    from .ig.reports import Filters
    from .store.engine import Store

    if fmt not in export.FORMATS:
        typer.echo(f"error: --format must be one of {', '.join(export.FORMATS)}", err=True)
        raise typer.Exit(2)
    try:
        window = Filters(
            subject_id=subject,
            actor_subject=actor,
            since=_moment(since, "since"),
            until=_moment(until, "until"),
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    settings = _settings()
    try:
        operator = getpass.getuser()
    except (KeyError, OSError):
        operator = str(os.getuid())
    notes = AuditNotes(
        Actor(
            subject=f"local:{operator}",
            issuer="urn:mash-hub:local",
            roles=frozenset(),
            agency=None,
            team=None,
            client="mash-hub audit export",
        )
    )
    notes.operation("export", "audit export")
    notes.purpose("IG_AUDIT", None)
    window.note(notes, "export")  # the subject asked about is one of its data subjects
    notes.report(window.audit("export") | {"format": fmt})
    record = notes.build()

    async def run(target: Any) -> int:
        store = Store(settings.hub_database_url)
        try:
            writer = AuditWriter(store)
            try:
                await writer.write(record)
            finally:
                await writer.aclose()
            return await export.write(
                store,
                fmt,
                target,
                window.since,
                window.until,
                window.subject_id,
                window.actor_subject,
            )
        finally:
            await store.aclose()

    partial = Path(out + ".partial") if out else None
    try:
        if partial is None:
            count = asyncio.run(run(sys.stdout))
        else:
            with partial.open("w", encoding="utf-8", newline="") as target:
                count = asyncio.run(run(target))
            partial.replace(Path(str(out)))
    except AuditUnavailable:
        if partial is not None:
            partial.unlink(missing_ok=True)
        typer.echo(
            "error: the audit store is unavailable or not migrated: nothing exported", err=True
        )
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.echo(f"error: the export cannot be written ({type(exc).__name__})", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"exported {count} audit events ({fmt})", err=True)


def main() -> None:
    app(prog_name="mash-hub")


if __name__ == "__main__":
    main()
