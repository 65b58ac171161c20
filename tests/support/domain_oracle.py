"""An independent computation of the example plugin's result for a domain name.

Built on the `publicsuffixlist` package reading the plugin's bundled list, Python's
`idna` codec and plain string operations: it shares no code with the plugin.
"""

from __future__ import annotations

import codecs
import re
from typing import Any

from publicsuffixlist import PublicSuffixList

from tests.conftest import REPO

LIST_FILE = REPO / "plugins" / "example_plugin" / "public_suffix_list.dat"
MODES = ("all", "icann")
LDH_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")


def load_psls() -> dict[str, PublicSuffixList]:
    result = {}
    for mode in MODES:
        with LIST_FILE.open(encoding="utf-8") as source:
            result[mode] = PublicSuffixList(source=source, only_icann=mode == "icann")
    return result


def oracle_normalise(raw: str) -> str:
    name = re.sub("[\u3002\uff0e\uff61]", ".", raw.strip()).lower()
    return name[:-1] if name.endswith(".") else name


def oracle_ascii(name: str) -> str:
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        # The codec rejects ASCII labels over 63 characters; such names are their own ASCII form.
        assert name.isascii(), name
        return name


def oracle_unicode_label(label: str) -> str | None:
    if not label.startswith("xn--"):
        return label
    try:
        return label.encode("ascii").decode("idna")
    except UnicodeError:
        pass
    try:  # IDNA 2008-only labels (ß, newer code points) fail the 2003 round trip
        return codecs.decode(label[4:].encode("ascii"), "punycode")
    except UnicodeError:
        return None


def oracle_unicode(name: str) -> tuple[str, bool]:
    """The Unicode form and whether every xn-- label decoded."""
    try:
        return name.encode("ascii").decode("idna"), True
    except UnicodeError:
        labels = [(label, oracle_unicode_label(label)) for label in name.split(".")]
        ok = all(u is not None for _, u in labels)
        return ".".join(u if u is not None else a for a, u in labels), ok


def oracle_is_icann(name: str, mode: str, psls: dict[str, PublicSuffixList]) -> bool:
    # The prevailing rule is an ICANN one exactly when the ICANN rules alone, with no
    # implicit "*", give the same public suffix as the rule set in use.
    icann_only = psls["icann"].publicsuffix(name, accept_unknown=False)
    return icann_only is not None and icann_only == psls[mode].publicsuffix(name)


def oracle_valid(ascii_name: str, decodable: bool) -> bool:
    labels = ascii_name.split(".")
    return (
        decodable
        and len(ascii_name) <= 253
        and all(1 <= len(lb) <= 63 and LDH_LABEL.fullmatch(lb) for lb in labels)
        and not labels[-1].isdigit()
    )


def expected_result(raw: str, mode: str, psls: dict[str, PublicSuffixList]) -> dict[str, Any]:
    psl = psls[mode]
    domain = oracle_normalise(raw)
    ascii_name = oracle_ascii(domain)
    unicode_name, decodable = oracle_unicode(ascii_name)
    suffix = psl.publicsuffix(ascii_name)
    assert suffix is not None, ascii_name  # accept_unknown: every name has a suffix
    registrable = psl.privatesuffix(ascii_name)
    parts = psl.privateparts(ascii_name)
    return {
        "input": raw,
        "domain": domain,
        "ascii": ascii_name,
        "unicode": unicode_name,
        "public_suffix": suffix,
        "public_suffix_unicode": oracle_unicode(suffix)[0],
        "registrable_domain": registrable,
        "registrable_domain_unicode": oracle_unicode(registrable)[0] if registrable else None,
        "subdomain": ".".join(parts[:-1]) if parts else "",
        "is_icann_suffix": oracle_is_icann(ascii_name, mode, psls),
        "labels": len(ascii_name.split(".")),
        "length": len(ascii_name),
        "longest_label": max(len(lb) for lb in ascii_name.split(".")),
        "has_digits": any(ch.isascii() and ch.isdigit() for ch in unicode_name),
        "has_hyphen": "-" in unicode_name,
        "is_punycode": any(lb.startswith("xn--") for lb in domain.split(".")),
        "is_idn": any(lb.startswith("xn--") for lb in ascii_name.split(".")),
        "valid": oracle_valid(ascii_name, decodable),
        "suffix_rules": mode,
    }
