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
        # surrogatepass writes each surrogate as its 3-byte form, which UTF-8 decoding refuses
        # and replaces; valid characters around it come back unchanged.
        value = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return value.replace("\0", "") if "\0" in value else value


def clean_mapping(values: Mapping[str, str]) -> dict[str, str]:
    """A string-to-string mapping with every key and value cleaned."""
    return {clean_text(key): clean_text(value) for key, value in values.items()}
