"""Offline facts about one domain name: normal forms, public suffix split, label stats."""

from __future__ import annotations

import re
from typing import Any

from idn import ACE_PREFIX, IdnaError, label_to_ascii, label_to_unicode, unify_dots
from psl import SuffixRules

MAX_NAME_LENGTH = 253  # RFC 1035 limits the wire form to 255 octets: 253 characters as text
MAX_LABEL_LENGTH = 63  # RFC 1035, section 2.3.4

# Letters, digits and hyphens, not starting or ending with a hyphen (RFC 1035 / RFC 1123).
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")


class BadInputError(ValueError):
    """The task's input is not something this plugin can analyse; the message says why."""


def domain_from_input(data: object) -> str:
    """The raw `domain` string from the task's input object."""
    if not isinstance(data, dict):
        raise BadInputError(f"input must be a JSON object, got {_json_type(data)}")
    if "domain" not in data:
        raise BadInputError('input has no "domain" key (expected {"domain": "example.com"})')
    domain = data["domain"]
    if not isinstance(domain, str):
        raise BadInputError(f'"domain" must be a string, got {_json_type(domain)}')
    return domain


def normalise(raw: str) -> str:
    """Stripped, lowercased, IDNA dots unified, one trailing (root) dot removed."""
    name = unify_dots(raw.strip()).lower()
    return name[:-1] if name.endswith(".") else name


def analyse(raw: str, rules: SuffixRules) -> dict[str, Any]:
    """Everything the plugin reports about `raw`; raises BadInputError for non-names."""
    domain = normalise(raw)
    if not domain:
        raise BadInputError(f'"domain" is empty: {_preview(raw)}')
    labels = domain.split(".")
    if "" in labels:
        raise BadInputError(f'"domain" has an empty label (leading or double dot): {_preview(raw)}')
    try:
        ascii_labels = [label_to_ascii(label) for label in labels]
    except IdnaError as exc:
        raise BadInputError(f'"domain" {_preview(raw)}: {exc}') from exc
    decoded = [label_to_unicode(label) for label in ascii_labels]
    # An undecodable xn-- label stays as written in the Unicode form (and makes the name invalid).
    unicode_labels = [u if u is not None else a for u, a in zip(decoded, ascii_labels, strict=True)]
    ascii_name = ".".join(ascii_labels)
    unicode_name = ".".join(unicode_labels)
    return {
        "input": raw,
        "domain": domain,
        "ascii": ascii_name,
        "unicode": unicode_name,
        **_suffix_facts(ascii_labels, unicode_labels, rules),
        # Length limits apply to the ASCII form, the one that goes on the wire.
        "labels": len(ascii_labels),
        "length": len(ascii_name),
        "longest_label": max(len(label) for label in ascii_labels),
        # Character facts describe the name as people read it: in the ASCII form
        # every IDN would "have a hyphen" from its xn-- prefix.
        "has_digits": any(ch in "0123456789" for ch in unicode_name),
        "has_hyphen": "-" in unicode_name,
        "is_punycode": any(label.startswith(ACE_PREFIX) for label in labels),
        "is_idn": any(label.startswith(ACE_PREFIX) for label in ascii_labels),
        "valid": _is_valid(ascii_labels) and None not in decoded,
    }


def _suffix_facts(
    ascii_labels: list[str], unicode_labels: list[str], rules: SuffixRules
) -> dict[str, Any]:
    match = rules.match(ascii_labels)
    size = match.length
    has_registrable = len(ascii_labels) > size
    return {
        "public_suffix": ".".join(ascii_labels[-size:]),
        "public_suffix_unicode": ".".join(unicode_labels[-size:]),
        "registrable_domain": ".".join(ascii_labels[-size - 1 :]) if has_registrable else None,
        "registrable_domain_unicode": (
            ".".join(unicode_labels[-size - 1 :]) if has_registrable else None
        ),
        "subdomain": ".".join(ascii_labels[: -size - 1]) if has_registrable else "",
        "is_icann_suffix": match.is_icann,
        "suffix_rule": match.rule,
    }


def _is_valid(ascii_labels: list[str]) -> bool:
    """RFC 1035-style host name checks on the ASCII form."""
    if len(".".join(ascii_labels)) > MAX_NAME_LENGTH:
        return False
    for label in ascii_labels:
        if len(label) > MAX_LABEL_LENGTH or not _LDH_LABEL.fullmatch(label):
            return False
    # An all-numeric top-level label would make "10.0.0.1" look like a name (RFC 3696, section 2).
    return not ascii_labels[-1].isdigit()


def _preview(raw: str, limit: int = 80) -> str:
    """The input as quoted in error messages, cut short: the agent keeps only so much stderr."""
    return repr(raw) if len(raw) <= limit else repr(raw[:limit]) + f"... ({len(raw)} characters)"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
