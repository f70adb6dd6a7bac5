"""Identity: normalizing identifiers, and the rules that link them to customers.

The linking rule runs in PostgreSQL, in the same statement that stores the interaction (function
`link_interaction_identifiers`, migration 0007); merges, undo, detach and suggestions are in `unify.identity.merges`.
The README's "Identity" section states the rules for an administrator."""

from unify.identity._normalize import (
    DEFAULT_RULES,
    EQUIVALENCE_RULES,
    NormalizationRules,
    NormalizedIdentifier,
    normalize_identifier,
    normalize_identifiers,
)
from unify.identity._policy import IdentityPolicy, identity_policy, parse_limits, parse_rules

__all__ = [
    "DEFAULT_RULES",
    "EQUIVALENCE_RULES",
    "IdentityPolicy",
    "NormalizationRules",
    "NormalizedIdentifier",
    "identity_policy",
    "normalize_identifier",
    "normalize_identifiers",
    "parse_limits",
    "parse_rules",
]
