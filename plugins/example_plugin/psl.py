"""The Public Suffix List algorithm (https://publicsuffix.org/list/), stdlib only.

Rules are normal (`co.uk`), wildcard (`*.ck`) or exception (`!www.ck`). A name's
public suffix comes from the prevailing rule among those that match it: an
exception rule if any (minus its leftmost label), otherwise the rule with the most
labels, otherwise the implicit `*` rule (the top-level label alone).

Matching is done on ASCII (punycode) labels, so Unicode rules are converted when
the list is loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from idn import label_to_ascii

ICANN_BEGIN = "// ===BEGIN ICANN DOMAINS==="
ICANN_END = "// ===END ICANN DOMAINS==="
PRIVATE_BEGIN = "// ===BEGIN PRIVATE DOMAINS==="
PRIVATE_END = "// ===END PRIVATE DOMAINS==="


@dataclass(frozen=True)
class Rule:
    """One line of the list, kept as written so results can say which rule decided."""

    text: str
    is_icann: bool


@dataclass(frozen=True)
class SuffixMatch:
    """The outcome of a lookup: how many trailing labels form the public suffix."""

    length: int
    rule: str
    is_icann: bool


# No listed rule matched: the public suffix is the top-level label. That label is
# not on the list, so it is not an ICANN suffix.
DEFAULT_MATCH = SuffixMatch(length=1, rule="*", is_icann=False)


class SuffixRules:
    """The rules of one list, indexed by the ASCII name each one is anchored on."""

    def __init__(self) -> None:
        self._normal: dict[str, Rule] = {}
        self._wildcard: dict[str, Rule] = {}  # keyed by the part after "*."
        self._exception: dict[str, Rule] = {}  # keyed by the part after "!"

    @classmethod
    def from_file(cls, path: Path, *, include_private: bool = True) -> SuffixRules:
        with path.open(encoding="utf-8") as lines:
            return cls.from_lines(lines, include_private=include_private)

    @classmethod
    def from_lines(cls, lines: Iterable[str], *, include_private: bool = True) -> SuffixRules:
        rules = cls()
        for text, is_icann in _read_rules(lines):
            if is_icann or include_private:
                rules._add(text, is_icann)
        rules._imply_wildcard_parents()
        return rules

    def _add(self, text: str, is_icann: bool) -> None:
        rule = Rule(text, is_icann)
        if text.startswith("!"):
            table, name = self._exception, text[1:]
        elif text.startswith("*."):
            table, name = self._wildcard, text[2:]
        else:
            table, name = self._normal, text
        if "*" in name:
            # The format allows wildcards in any label, but the list has never used
            # one outside the leftmost position; fail loudly should that change.
            raise ValueError(f"unsupported wildcard position in rule {text!r}")
        # Most rules are ASCII already; only IDN rules pay for the IDNA conversion.
        key = name if name.isascii() else ".".join(map(label_to_ascii, name.split(".")))
        # A rule listed twice keeps its first (ICANN-section) entry.
        table.setdefault(key, rule)

    def _imply_wildcard_parents(self) -> None:
        # `*.kobe.jp` without a `kobe.jp` line: the formal algorithm would make
        # kobe.jp's suffix "jp", but browsers (Chromium, Firefox), libpsl and Go's
        # publicsuffix treat the wildcard's parent as a public suffix too, and the
        # list's own linter now requires that parent to be listed. Follow them.
        for name, rule in self._wildcard.items():
            self._normal.setdefault(name, rule)

    def match(self, labels: Sequence[str]) -> SuffixMatch:
        """The prevailing rule for a name given as lowercase ASCII labels, none empty."""
        best: SuffixMatch | None = None
        exception: SuffixMatch | None = None
        for depth in range(1, len(labels) + 1):
            name = ".".join(labels[-depth:])
            if (rule := self._exception.get(name)) is not None:
                # Longest exception wins; it prevails over every other kind of rule.
                exception = SuffixMatch(depth - 1, rule.text, rule.is_icann)
            if (rule := self._normal.get(name)) is not None:
                best = _better(best, SuffixMatch(depth, rule.text, rule.is_icann))
            if depth < len(labels) and (rule := self._wildcard.get(name)) is not None:
                best = _better(best, SuffixMatch(depth + 1, rule.text, rule.is_icann))
        return exception or best or DEFAULT_MATCH


def _better(current: SuffixMatch | None, candidate: SuffixMatch) -> SuffixMatch:
    """More labels wins; on a tie prefer the ICANN rule so the section is not understated."""
    if current is None or candidate.length > current.length:
        return candidate
    if candidate.length == current.length and candidate.is_icann and not current.is_icann:
        return candidate
    return current


def _read_rules(lines: Iterable[str]) -> Iterable[tuple[str, bool]]:
    """Yield (rule, is_icann) for each rule line, tracking the section markers."""
    is_icann = False  # rules before any marker (there are none today) count as private
    for raw in lines:
        line = raw.strip()
        if line == ICANN_BEGIN:
            is_icann = True
        elif line in (ICANN_END, PRIVATE_BEGIN, PRIVATE_END):
            is_icann = False
        elif line and not line.startswith("//"):
            # The format reads each line only up to its first whitespace.
            yield line.split()[0].lower(), is_icann
