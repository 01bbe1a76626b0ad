"""Text made safe to log: every string that enters a record from outside (headers, bodies, log
messages) passes through `clean_text`, so no value can make a record unserializable or an insert
fail (lone surrogates, bytes that were not UTF-8, NUL)."""

from __future__ import annotations

from collections.abc import Mapping

REPLACEMENT = "\ufffd"


def clean_text(value: str) -> str:
    """`value` as valid UTF-8 without NUL: lone surrogates (including the ones a decoder made of
    undecodable bytes) become U+FFFD and NUL characters are dropped."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = _valid_utf8(value)
    return value.replace("\0", "") if "\0" in value else value


def cut_text(value: object, limit: int) -> str:
    """`value` as text, cleaned, at most `limit` characters: cut before cleaning so a huge value
    is never walked whole, and after, as cleaning may spell one bad character as up to three
    U+FFFD. None is the empty string."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return clean_text(text[:limit])[:limit]


def clean_mapping(values: Mapping[str, str]) -> dict[str, str]:
    """A string-to-string mapping with every key and value cleaned."""
    return {clean_text(key): clean_text(value) for key, value in values.items()}


def _valid_utf8(value: str) -> str:
    # A decoder's escapes (U+DC80..U+DCFF) turn back into the bytes they stood for, one U+FFFD
    # each; any other lone surrogate is written in its 3-byte form, which decoding replaces.
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = value.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "replace")
