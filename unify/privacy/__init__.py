"""Privacy: redaction, raw-body encryption, erasure and export."""
