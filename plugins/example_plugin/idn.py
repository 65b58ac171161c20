"""Label-level IDNA conversion on top of the stdlib codec (IDNA 2003, `encodings.idna`).

Conversion is done one label at a time, not with `name.encode("idna")`, so that a
too-long ASCII label is reported as an invalid name instead of failing the whole
task, and so that one undecodable `xn--` label does not hide the rest of the name.
"""

from __future__ import annotations

import codecs
from encodings import idna

ACE_PREFIX = "xn--"

# IDNA treats these as label separators too (RFC 3490, section 3.1).
_IDNA_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


class IdnaError(ValueError):
    """A Unicode label cannot be converted to its ASCII (punycode) form."""


def unify_dots(name: str) -> str:
    """Replace the ideographic and full-width full stops by ".", as IDNA does."""
    return name.translate(_IDNA_DOTS)


def label_to_ascii(label: str) -> str:
    """The ASCII form of one label; ASCII labels pass through unchanged.

    ASCII labels skip the codec because it would reject a label longer than 63
    characters outright; length limits are judged later, by the validity check.
    """
    if label.isascii():
        return label
    try:
        return idna.ToASCII(label).decode("ascii")
    except UnicodeError as exc:
        shown = label if len(label) <= 80 else label[:80] + "..."
        raise IdnaError(f"label {shown!r} cannot be converted to IDNA: {exc}") from exc


def label_to_unicode(label: str) -> str | None:
    """The Unicode form of one ASCII label, or None for an `xn--` label that does not decode.

    Raw punycode decoding is used rather than `idna.ToUnicode` because the latter
    also demands an IDNA 2003 round trip, which IDNA 2008 names in real use (such as
    `xn--strae-oqa` for "straße") fail. A decoded label must still be a real
    A-label: non-ASCII, printable, and encoding back to exactly the same text.
    """
    if not label.startswith(ACE_PREFIX):
        return label
    encoded = label[len(ACE_PREFIX) :]
    try:
        decoded = codecs.decode(encoded.encode("ascii"), "punycode")
    except (UnicodeError, ValueError):
        return None
    if decoded.isascii() or not decoded.isprintable():
        return None
    if codecs.encode(decoded, "punycode").decode("ascii") != encoded:
        return None
    return decoded
