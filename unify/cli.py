"""The `unify` command line: serve, migrate, schema, keys, demo."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import msgspec

from unify.errors import BadRequest, UnifyError
from unify.settings import Settings, load_settings

T = TypeVar("T")


def _database_url(settings: Settings) -> str:
    """DATABASE_URL if set; otherwise start the embedded PostgreSQL (stopped when this process exits)."""
    if settings.database_url:
        return settings.database_url
    from unify.embedded import start_embedded

    dsn = start_embedded(settings.embedded_pgdata)
    print(f"embedded PostgreSQL running with data in {settings.embedded_pgdata}", file=sys.stderr)
    return dsn


async def _with_connection(dsn: str, work: Callable[[Any], Awaitable[T]], *, migrate_first: bool = True) -> T:
    from unify.store import connect, migrate

    conn = await connect(dsn)
    try:
        if migrate_first:
            await migrate(conn)
        return await work(conn)
    finally:
        await conn.close()


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from granian import Granian
    from granian.constants import Interfaces

    from unify.store import migrate

    dsn = _database_url(settings)
    os.environ["DATABASE_URL"] = dsn  # the server workers read their settings from the environment
    asyncio.run(_with_connection(dsn, migrate, migrate_first=False))  # once, before the workers start
    from unify.privacy.setup import raw_keyring

    raw_keyring(settings)  # creates (and announces) the raw-body key once, before the workers read it
    host = args.host or settings.host
    port = args.port or settings.port
    if args.demo:
        _load_demo(dsn, f"http://{host}:{port}")
    print(f"unify listening on http://{host}:{port}  (OpenAPI: /schema, health: /healthz, /readyz)", file=sys.stderr)
    Granian(
        "unify.http:create_app",
        factory=True,
        address=host,
        port=port,
        workers=args.workers or settings.workers,
        interface=Interfaces.ASGI,
        log_access=False,
    ).serve()
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from unify.store import migrate

    applied = asyncio.run(_with_connection(_database_url(settings), migrate, migrate_first=False))
    print(f"applied {len(applied)} migration(s)" + (f": {applied}" if applied else "; the schema is up to date"))
    return 0


def cmd_schema(args: argparse.Namespace, settings: Settings) -> int:
    from schemas import SCHEMA_TYPES

    schema, components = msgspec.json.schema_components(SCHEMA_TYPES, ref_template="#/$defs/{name}")
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "unify shared schema",
        "anyOf": schema,
        "$defs": components,
    }
    text = msgspec.json.format(msgspec.json.encode(document), indent=2).decode() + "\n"
    if args.output and args.output != "-":
        Path(args.output).write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    from unify import auth

    dsn = _database_url(settings)
    if args.keys_command == "create":
        key, record = asyncio.run(_with_connection(dsn, lambda c: auth.create_key(c, args.name, args.scope)))
        print(f"created key {record.id} ({record.name}) with scopes {', '.join(record.scopes)}", file=sys.stderr)
        print("the key is shown once; store it now:", file=sys.stderr)
        print(key)
    elif args.keys_command == "list":
        for k in asyncio.run(_with_connection(dsn, auth.list_keys)):
            state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
            print(f"{k.id}  {k.name:<20} {','.join(k.scopes):<40} {state}")
    elif args.keys_command == "rotate-raw":
        _rotate_raw_key(dsn, settings)
    elif args.keys_command == "revoke":
        asyncio.run(_with_connection(dsn, lambda c: auth.revoke_key(c, UUID(args.key_id))))
        print(f"revoked {args.key_id}")
    return 0


def cmd_connectors(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.registry import connector_names
    from unify.connector_settings import list_connector_settings, save_connector_settings

    dsn = _database_url(settings)
    if args.connectors_command == "list":
        configured = dict(asyncio.run(_with_connection(dsn, list_connector_settings)))
        for name in connector_names():
            stored = configured.get(name, {})
            shown = {k: ("***" if k in ("secret", "basic_auth") else v) for k, v in stored.items()}
            print(f"{name:<24} {shown or 'not configured'}")
        return 0
    if args.name not in connector_names():
        raise UnifyError(f"no connector named {args.name!r}; one of: {', '.join(connector_names())}")
    values: dict[str, Any] = {}
    for option in ("secret", "basic_auth", "public_base_url", "default_region", "max_skew_seconds", "timezone"):
        value = getattr(args, option)
        if value is not None:
            values[option] = value or None  # an empty string removes the setting
    if args.no_verify:
        values["verify"] = False
    for pair in args.option or []:
        key, _, value = pair.partition("=")
        values[key] = value or None
    stored = asyncio.run(_with_connection(dsn, lambda c: save_connector_settings(c, args.name, **values)))
    print(f"{args.name}: {', '.join(sorted(stored)) or 'no settings'} set")
    return 0


def _rotate_raw_key(dsn: str, settings: Settings) -> None:
    """With the key file: add a new current key, then re-encrypt. With UNIFY_RAW_KEYS: the operator has put the new
    key first already; re-encrypt under it."""
    from unify.privacy.rotation import reseal_raw_events
    from unify.privacy.setup import KEY_FILE, raw_keyring
    from unify.privacy.vault import replace_key_file

    keyring = raw_keyring(settings)
    if settings.raw_keys:
        print(f"UNIFY_RAW_KEYS is set: re-encrypting under its first key {keyring.current_id!r}", file=sys.stderr)
    else:
        path = Path(settings.data_dir).expanduser() / KEY_FILE
        keyring = keyring.rotated()
        replace_key_file(path, keyring)
        print(f"new raw-body key {keyring.current_id!r} written to {path} (older keys kept)", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            print(f"\rre-encrypting raw bodies: {done}/{total}", end="", file=sys.stderr)

    count = asyncio.run(_with_connection(dsn, lambda c: reseal_raw_events(c, keyring, progress)))
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(f"re-encrypted {count} raw bodies under key {keyring.current_id!r}")
    print("restart running servers so that they encrypt with the new key, then run this again", file=sys.stderr)


def cmd_purge(args: argparse.Namespace, settings: Settings) -> int:
    from unify.privacy.retention import purge

    report = asyncio.run(_with_connection(_database_url(settings), lambda c: purge(c, settings)))
    print(
        f"purged raw bodies: {report.raw_processed} processed (older than {settings.raw_retention_days} days), "
        f"{report.raw_unprocessed} rejected/failed (older than {settings.failed_raw_retention_days} days); "
        f"interactions: {report.interactions or 'none (no channel has a retention set)'}; "
        f"split-message parts: {report.fragments}; replay tokens: {report.replay_tokens}"
    )
    return 0


def _load_demo(dsn: str, base_url: str) -> None:
    from unify import auth
    from unify.demo import demo_events
    from unify.ingest import RawDelivery, ingest_events
    from unify.privacy.setup import ingest_options
    from unify.store import migrate, open_pool

    settings = load_settings()
    options = ingest_options(settings)
    events = demo_events(now=datetime.now(UTC))

    async def main() -> tuple[str, int, int, str]:
        pool = await open_pool(dsn, min_size=1, max_size=2)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)  # `unify demo` on a database nothing has started yet
            created = duplicates = 0
            example = ""
            for start in range(0, len(events), 200):
                chunk = events[start : start + 200]
                body = msgspec.json.encode(chunk)
                raw = RawDelivery("demo", "application/json", [], body, len(body))
                result = await ingest_events(pool, raw, chunk, options=options)
                created += result.created
                duplicates += result.duplicates
                example = example or str(result.results[0].interaction_id)
                if sys.stderr.isatty():
                    print(f"\rloading demo data: {start + len(chunk)}/{len(events)} events", end="", file=sys.stderr)
            if sys.stderr.isatty():
                print(file=sys.stderr)
            async with pool.acquire() as conn:
                key, _ = await auth.create_key(conn, "demo", auth.SCOPES)
            return key, created, duplicates, example
        finally:
            await pool.close()

    key, created, duplicates, example = asyncio.run(main())
    print(f"demo data: {created} interactions created, {duplicates} already there", file=sys.stderr)
    print(f"demo API key (all scopes): {key}", file=sys.stderr)
    print(f"try: curl -H 'Authorization: Bearer {key}' {base_url}/v1/interactions/{example}", file=sys.stderr)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    _load_demo(_database_url(settings), f"http://{settings.host}:{settings.port}")
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from unify.importer import ImportSource, format_of_path, import_file, parse_mapping
    from unify.privacy.setup import ingest_options
    from unify.store import migrate, open_pool

    path = Path(args.file)
    if not path.is_file():
        raise UnifyError(f"no such file: {path}")
    fmt = args.format or format_of_path(path)
    if fmt is None:
        raise UnifyError(f"cannot tell the format of {path.name} from its name; pass --format jsonl or --format csv")
    mapping = parse_mapping(args.map, args.verification) if fmt == "csv" else None
    dsn = _database_url(settings)
    options = ingest_options(settings)
    source = ImportSource.from_path(path)

    async def run(progress: Progress) -> Any:
        task = progress.add_task(f"importing {path.name}", total=source.size)
        pool = await open_pool(dsn, min_size=1, max_size=2)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
            return await import_file(
                pool,
                source,
                fmt=fmt,
                options=options,
                mapping=mapping,
                chunk_size=args.chunk_size,
                progress=lambda done, total: progress.update(task, completed=done),
            )
        finally:
            await pool.close()

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, TimeRemainingColumn(), transient=True, console=Console(stderr=True)) as progress:
        report = asyncio.run(run(progress))
    if report.resumed:
        print(f"resumed: {report.chunks_skipped} chunk(s) were already imported", file=sys.stderr)
    print(msgspec.json.format(msgspec.json.encode(report), indent=2).decode())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unify", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP service (embedded PostgreSQL unless DATABASE_URL is set)")
    serve.add_argument("--host", help="address to listen on (UNIFY_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (UNIFY_PORT, default 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (UNIFY_WORKERS, default 1)")
    serve.add_argument("--demo", action="store_true", help="load the demo data set and print an API key first")
    serve.set_defaults(run=cmd_serve)

    sub.add_parser("migrate", help="apply pending database migrations").set_defaults(run=cmd_migrate)

    schema = sub.add_parser("schema", help="write the shared schema as JSON Schema")
    schema.add_argument("-o", "--output", help="file to write (default: standard output)")
    schema.set_defaults(run=cmd_schema)

    keys = sub.add_parser("keys", help="create, list and revoke API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key; it is printed once")
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        help="ingest, context:read, context:write, audit:read or admin (repeat for several)",
    )
    create.add_argument("--name", default="unnamed", help="what the key is for")
    keys_sub.add_parser("list", help="list keys (never their secrets)")
    keys_sub.add_parser("rotate-raw", help="new raw-body encryption key; re-encrypt stored raw bodies under it")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")
    keys.set_defaults(run=cmd_keys)

    connectors = sub.add_parser("connectors", help="configure webhook connectors (secrets, public URL, …)")
    connectors_sub = connectors.add_subparsers(dest="connectors_command", required=True)
    connectors_sub.add_parser("list", help="every connector and its settings (secrets masked)")
    configure = connectors_sub.add_parser("set", help="set settings of one connector (empty value removes one)")
    configure.add_argument("name", help="the connector's route name, e.g. twilio-sms")
    configure.add_argument("--secret", help="signing secret / auth token / signing key of the platform")
    configure.add_argument("--basic-auth", dest="basic_auth", help="user:password for platforms that do not sign")
    configure.add_argument("--public-base-url", dest="public_base_url", help="https://… the platform calls")
    configure.add_argument("--default-region", dest="default_region", help="phone region, e.g. US or GB")
    configure.add_argument("--max-skew-seconds", dest="max_skew_seconds", help="oldest signed timestamp accepted")
    configure.add_argument("--timezone", help="IANA zone of timestamps without one (CDR CSV)")
    configure.add_argument("--no-verify", action="store_true", help="do not check signatures (local tests only)")
    configure.add_argument("--option", action="append", metavar="KEY=VALUE", help="connector-specific option")
    connectors.set_defaults(run=cmd_connectors)

    sub.add_parser("purge", help="delete raw bodies and interactions past their retention").set_defaults(run=cmd_purge)

    sub.add_parser("demo", help="load the demo data set and print an API key").set_defaults(run=cmd_demo)

    imports = sub.add_parser(
        "import", help="bulk import a JSONL file of events or a CSV file of contacts (resumes an interrupted run)"
    )
    imports.add_argument("file", help="the file to import")
    imports.add_argument("--format", choices=["jsonl", "csv"], help="default: from the file name (.jsonl, .csv)")
    imports.add_argument(
        "--map", help="CSV: KIND=COLUMN pairs, e.g. account=AccountNo,email=Email,phone=Mobile,name=FullName"
    )
    imports.add_argument(
        "--verification",
        default="authenticated",
        choices=["unverified", "carrier_attested", "signed", "authenticated"],
        help="CSV: how far the contacts are trusted (default authenticated: your own CRM records)",
    )
    imports.add_argument("--chunk-size", type=int, default=5000, help="lines per transaction (default 5000)")
    imports.set_defaults(run=cmd_import)

    identity = sub.add_parser("identity", help="identity upkeep")
    identity_sub = identity.add_subparsers(dest="identity_command", required=True)
    scan = identity_sub.add_parser("scan", help="suggest merging customers with similar names (never merges)")
    scan.add_argument("--min-score", type=float, help="lowest score suggested (UNIFY_FUZZY_MIN_SCORE, default 0.85)")
    scan.add_argument("--limit", type=int, help="most candidate pairs compared (default: all)")
    identity.set_defaults(run=cmd_identity)

    audit = sub.add_parser(
        "audit", help="cross-channel consistency audit: is every channel treated alike? (JSON, CSV or HTML)"
    )
    audit.add_argument("--from", dest="start", help="start: a date (UTC) or an RFC 3339 time (default: to - 30 days)")
    audit.add_argument("--to", dest="end", help="end, exclusive: a date (its end) or an RFC 3339 time (default: now)")
    audit.add_argument("--channel", choices=["voice", "sms", "email", "chat"], help="only this channel")
    audit.add_argument("--reason", help="only contacts with this reason")
    audit.add_argument("--queue", help="only contacts in this queue")
    audit.add_argument("--format", choices=["json", "csv", "html"], help="default: from -o's suffix, else json")
    audit.add_argument("-o", "--output", help="file to write (default: standard output)")
    audit.set_defaults(run=cmd_audit)

    replay = sub.add_parser(
        "replay", help="re-process stored raw deliveries that failed (after a fix), idempotently, and report"
    )
    replay.add_argument("--id", dest="ids", type=int, action="append", help="a raw event id (repeat for several)")
    replay.add_argument(
        "--connector", dest="connectors", action="append", help="a route: connector name or native (repeatable)"
    )
    replay.add_argument("--since", help="received at or after this RFC 3339 time (with offset)")
    replay.add_argument("--until", help="received before this RFC 3339 time (with offset)")
    replay.add_argument(
        "--status",
        dest="statuses",
        action="append",
        choices=["rejected", "failed", "unverified", "processed"],
        help="only these statuses (default: rejected and failed; unverified needs --reverify, processed --force)",
    )
    replay.add_argument("--reverify", action="store_true", help="also replay unverified ones, checking them again")
    replay.add_argument("--force", action="store_true", help="also replay processed ones (they answer duplicates)")
    replay.add_argument("--dry-run", action="store_true", help="report what would happen, write nothing")
    replay.add_argument("--limit", type=int, help="replay at most this many")
    replay.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    replay.set_defaults(run=cmd_replay)
    return parser


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    """Replay raw deliveries (unify/replay.py); exit 1 when any selected one still fails."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from schemas._replay import ReplayRequest
    from unify.privacy.setup import ingest_options, raw_keyring
    from unify.replay import ReplayContext, print_report, replay
    from unify.store import migrate, open_pool

    def moment(value: str | None, name: str) -> datetime | None:
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise UnifyError(f"{name} must be an RFC 3339 time, not {value!r}") from None
        if parsed.tzinfo is None:
            raise UnifyError(f"{name} needs an offset (e.g. 2026-11-02T09:00:00+01:00 or …Z)")
        return parsed

    if args.limit is not None and args.limit < 1:
        raise UnifyError("--limit must be at least 1")
    if args.statuses and "unverified" in args.statuses and not args.reverify:
        raise UnifyError("unverified deliveries are replayed only with --reverify (their signature is checked again)")
    if args.statuses and "processed" in args.statuses and not args.force:
        raise UnifyError("processed deliveries are replayed only with --force")
    asked = ReplayRequest(
        ids=args.ids or [],
        connectors=args.connectors or [],
        since=moment(args.since, "--since"),
        until=moment(args.until, "--until"),
        statuses=args.statuses,
        reverify=args.reverify,
        force=args.force,
        dry_run=args.dry_run,
        limit=args.limit,
    )
    dsn = _database_url(settings)
    context = ReplayContext(
        options=ingest_options(settings),
        keyring=raw_keyring(settings),
        default_region=settings.default_region,
        max_batch=settings.max_batch,
    )

    async def run(progress: Progress) -> Any:
        task = progress.add_task("replaying", total=None)
        pool = await open_pool(dsn, min_size=1, max_size=2)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
            return await replay(
                pool, asked, context, progress=lambda done, total: progress.update(task, completed=done, total=total)
            )
        finally:
            await pool.close()

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True, console=Console(stderr=True)) as progress:
        report = asyncio.run(run(progress))
    if args.json:
        print(msgspec.json.format(msgspec.json.encode(report), indent=2).decode())
    else:
        print_report(report, Console())
    return 0 if report.ok else 1


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    """The report `GET /v1/audit/consistency` answers, written to a file, with a progress display on stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from unify.audit import (
        STEP_COUNT,
        audit_request,
        consistency_report,
        output_format,
        render_csv,
        render_html,
        thresholds_of,
    )
    from unify.store import migrate, open_pool

    suffix = Path(args.output).suffix.lower().lstrip(".") if args.output and args.output != "-" else ""
    if not args.format and suffix and suffix not in ("json", "csv", "html", "htm"):
        raise BadRequest(f"--format: cannot tell the format from {args.output!r}; give --format json, csv or html")
    fmt = output_format(args.format or {"htm": "html"}.get(suffix, suffix) or None)
    asked = audit_request(args.start, args.end, channel=args.channel, reason=args.reason, queue=args.queue)
    dsn = _database_url(settings)

    async def run(progress: Progress) -> Any:
        task = progress.add_task("connecting", total=STEP_COUNT)

        def advance(description: str, done: int, total: int) -> None:
            progress.update(task, description=description, completed=done, total=total)

        # no statement timeout: a report over years of interactions takes as long as it takes
        conns = settings.audit_connections
        pool = await open_pool(dsn, min_size=conns, max_size=conns, command_timeout=None)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
            return await consistency_report(
                pool,
                asked,
                repeat_window_days=settings.repeat_window_days,
                thresholds=thresholds_of(settings),
                connections=settings.audit_connections,
                progress=advance,
            )
        finally:
            await pool.close()

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), transient=True, console=Console(stderr=True)) as progress:
        report = asyncio.run(run(progress))
    if fmt == "csv":
        text = render_csv(report)
    elif fmt == "html":
        text = render_html(report)
    else:
        text = msgspec.json.format(msgspec.json.encode(report), indent=2).decode() + "\n"
    if args.output and args.output != "-":
        Path(args.output).write_text(text, encoding="utf-8")
        print(
            f"wrote {args.output}: {report.overall.contacts} contacts, {len(report.deviations)} deviation(s), "
            f"in {report.elapsed_seconds:.2f} s",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(text)
    return 0


def cmd_identity(args: argparse.Namespace, settings: Settings) -> int:
    from unify.identity import identity_policy
    from unify.identity.fuzzy import scan_fuzzy_suggestions

    min_score = settings.fuzzy_min_score if args.min_score is None else args.min_score
    if not 0 < min_score <= 1:
        raise UnifyError("--min-score must be in (0, 1]")
    limits = identity_policy(settings).limits
    report = asyncio.run(
        _with_connection(
            _database_url(settings),
            lambda c: scan_fuzzy_suggestions(c, min_score=min_score, limits=limits, limit=args.limit),
        )
    )
    print(msgspec.json.encode(report).decode())
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        from unify.logging import configure_logging

        configure_logging(settings.log_format, settings.log_level)
        return int(args.run(args, settings) or 0)
    except UnifyError as exc:
        print(f"unify: {exc.detail}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
