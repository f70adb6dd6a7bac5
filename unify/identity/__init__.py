"""Identity: normalizing identifiers, and the rule that links them to customers.

The linking rule runs in PostgreSQL, in the same statement that stores the interaction (function
`link_interaction_identifiers`, migration 0003): an identifier already linked to a customer brings the interaction
to that customer (the most strongly verified one first); identifiers nobody owns yet join it (rule `same-event`) or
a new customer (rule `first-contact`). Two existing customers are never merged by ingest."""

from unify.identity._normalize import NormalizedIdentifier, normalize_identifier, normalize_identifiers

__all__ = ["NormalizedIdentifier", "normalize_identifier", "normalize_identifiers"]
