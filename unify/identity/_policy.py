"""The identity policy: how identifiers are normalized and when evidence links, merges or marks them shared.

Built once from the settings (`identity_policy`) and handed to ingest, lookups and import alike; the linking part
travels to PostgreSQL as one JSON parameter (`IdentityPolicy.linking`), where the rule runs."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import get_args

from schemas import Identifier, IdentifierKind, Verification
from unify.errors import ConfigurationError
from unify.identity._normalize import EQUIVALENCE_RULES, NormalizationRules, normalize_identifier

DEFAULT_LIMITS: Mapping[str, int] = MappingProxyType({"account": 1, "phone": 5, "email": 5})


@dataclass(frozen=True)
class IdentityPolicy:
    """Normalization rules, the weakest verification that merges two customers on its own, the most identifiers
    of a kind one customer may hold, and how many distinct customers make an identifier shared."""

    rules: NormalizationRules = field(default_factory=NormalizationRules)
    merge_min_verification: Verification = "authenticated"
    limits: Mapping[str, int] = field(default_factory=lambda: DEFAULT_LIMITS)
    shared_threshold: int = 3

    @functools.cached_property
    def linking(self) -> dict[str, object]:
        """The parameter `p_policy` of the SQL linking rule (migration 0007)."""
        return {
            "merge_min_verification": self.merge_min_verification,
            "limits": dict(self.limits),
            "shared_threshold": self.shared_threshold,
        }


def parse_limits(text: str) -> dict[str, int]:
    """`account=1,phone=5` → {"account": 1, "phone": 5}; a kind left out has no limit."""
    kinds = set(get_args(IdentifierKind))
    limits: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, sep, number = item.partition("=")
        kind = kind.strip().lower()
        if not sep or kind not in kinds or not number.strip().isdigit() or int(number) < 1:
            raise ConfigurationError(
                f"UNIFY_IDENTIFIER_LIMITS: {item!r} is not KIND=N with KIND one of {sorted(kinds)} and N ≥ 1"
            )
        limits[kind] = int(number)
    return limits


def parse_rules(equivalences: str, blocked: str, patterns: str, default_region: str = "US") -> NormalizationRules:
    """The rules from the three settings. Blocked values are normalized like any identifier (so `phone:(800)
    555-0100` blocks `+18005550100`); patterns are separated by whitespace (a comma may occur inside one)."""
    names = frozenset(filter(None, (part.strip().lower() for part in equivalences.split(","))))
    unknown = names - EQUIVALENCE_RULES
    if unknown:
        raise ConfigurationError(
            f"UNIFY_NORMALIZE_RULES: unknown rule(s) {sorted(unknown)}; known: {sorted(EQUIVALENCE_RULES)}"
        )
    kinds = set(get_args(IdentifierKind))
    blocked_values: set[tuple[str, str]] = set()
    for item in filter(None, (part.strip() for part in blocked.split(","))):
        kind, sep, value = item.partition(":")
        if not sep or kind.lower() not in kinds or not value:
            raise ConfigurationError(f"UNIFY_BLOCKED_IDENTIFIERS: {item!r} is not KIND:VALUE (e.g. phone:+18005550100)")
        normalized = normalize_identifier(
            Identifier(kind=kind.lower(), value=value),  # type: ignore[arg-type]
            default_region,
            NormalizationRules(equivalences=names),
        )
        blocked_values.add((kind.lower(), normalized.value if normalized else value))
    compiled: list[re.Pattern[str]] = []
    for item in patterns.split():
        try:
            compiled.append(re.compile(item))
        except re.error as exc:
            raise ConfigurationError(f"UNIFY_BLOCKED_PATTERNS: {item!r} is not a regular expression: {exc}") from exc
    return NormalizationRules(equivalences=names, blocked=frozenset(blocked_values), blocked_patterns=tuple(compiled))


def identity_policy(settings: object) -> IdentityPolicy:
    """The policy from `unify.settings.Settings` (typed loosely to keep identity free of the settings module)."""
    return IdentityPolicy(
        rules=parse_rules(
            getattr(settings, "normalize_rules", ""),
            getattr(settings, "blocked_identifiers", ""),
            getattr(settings, "blocked_patterns", ""),
            getattr(settings, "default_region", "US"),
        ),
        merge_min_verification=getattr(settings, "merge_min_verification", "authenticated"),
        limits=MappingProxyType(parse_limits(getattr(settings, "identifier_limits", ""))),
        shared_threshold=getattr(settings, "shared_identifier_threshold", 3),
    )
