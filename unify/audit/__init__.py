"""The cross-channel consistency audit: is every channel treated alike?

`consistency_report` aggregates (in PostgreSQL, queries/audit.sql) the contacts of a range per channel and
overall, and compares each channel with the others; `render_csv` / `render_html` write the report out.
`GET /v1/audit/consistency` and `unify audit` both call them."""

from unify.audit.params import AuditRequest, audit_request, output_format
from unify.audit.render import render_csv, render_html
from unify.audit.report import STEP_COUNT, consistency_report, thresholds_of

__all__ = [
    "STEP_COUNT",
    "AuditRequest",
    "audit_request",
    "consistency_report",
    "output_format",
    "render_csv",
    "render_html",
    "thresholds_of",
]
