"""Identity: normalizing identifiers and linking them to customers."""

from unify.identity._link import link_identifiers
from unify.identity._normalize import NormalizedIdentifier, normalize_identifier, normalize_identifiers

__all__ = ["NormalizedIdentifier", "link_identifiers", "normalize_identifier", "normalize_identifiers"]
