"""Named queries: each `.sql` file under `queries/` holds blocks that start with a `-- name: <query_name>` line."""

from __future__ import annotations

import re
from importlib import resources

_HEADER = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


class Queries(dict[str, str]):
    """Query text by name; a missing name is a programming error, so it raises KeyError with the name."""


def parse_queries(text: str) -> dict[str, str]:
    parts = _HEADER.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def load_queries(group: str) -> Queries:
    """Load `queries/<group>.sql` from the package."""
    text = resources.files("unify.store").joinpath("queries", f"{group}.sql").read_text("utf-8")
    return Queries(parse_queries(text))
