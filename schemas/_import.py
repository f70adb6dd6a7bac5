"""What a bulk import (`POST /v1/import`, `unify import FILE`) did."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from msgspec import Meta, Struct, field

ImportFormat = Literal["jsonl", "csv"]
"""`jsonl`: one native interaction event per line; `csv`: CRM contacts, read through a column mapping."""

Count = Annotated[int, Meta(ge=0)]


class ImportLineError(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One line that could not be imported: where it is in the file, and why. The line is kept raw with its error
    (`raw_event_id`) like every rejected input."""

    line: Annotated[int, Meta(ge=1, description="1-based line number in the file (the record's first line).")]
    message: str
    field: str | None = None


class ImportReport(Struct, frozen=True, kw_only=True):
    """The outcome of one run of an import. An import is identified by the file's SHA-256, its format and (CSV) the
    column mapping: running it again skips the chunks already committed (`chunks_skipped`) and carries on where an
    interrupted run stopped. Counts are of what this run did.

    For JSONL, `imported` counts interactions created, `updated` those an event advanced (a higher revision) and
    `duplicates` events that changed nothing. For CSV contacts, `imported` counts rows whose identifiers went
    through the linking rule and `duplicates` rows already all known to one customer."""

    import_id: UUID
    file_name: str
    format: ImportFormat
    sha256: str
    resumed: bool = False
    chunks: Count = 0
    chunks_skipped: Count = 0
    lines: Annotated[int, Meta(ge=0, description="Lines of the file read by this run, skipped chunks included.")] = 0
    lines_skipped: Annotated[int, Meta(ge=0, description="Lines in chunks an earlier run had committed.")] = 0
    imported: Count = 0
    updated: Count = 0
    duplicates: Count = 0
    unidentified: Annotated[
        int, Meta(ge=0, description="Events or contacts without any usable identifier (anonymous, junk, blocked).")
    ] = 0
    invalid: Count = 0
    errors: Annotated[list[ImportLineError], Meta(description="The first invalid lines.")] = field(default_factory=list)
    suggestions: Annotated[int, Meta(ge=0, description="New merge suggestions the import gave rise to.")] = 0
    customers_created: Annotated[
        int, Meta(ge=0, description="New customers, counted when their chunk committed (not merged into another).")
    ] = 0
    elapsed_seconds: Annotated[float, Meta(ge=0)] = 0.0
