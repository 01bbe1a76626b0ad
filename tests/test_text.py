"""`clean_text`: any string from outside becomes valid UTF-8 without NUL; only bad parts change."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from heliograph.domain.text import clean_mapping, clean_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain", "plain"),
        ("héllo 日本 🙂", "héllo 日本 🙂"),
        ("a\udcffb", "a\ufffdb"),  # an undecodable byte, as a decoder escapes it
        ("lone \ud800", "lone \ufffd\ufffd\ufffd"),
        ("nul\0byte", "nulbyte"),
    ],
)
def test_clean_text(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


@given(st.text(alphabet=st.characters(codec=None)))
def test_any_string_becomes_serializable(raw: str) -> None:
    cleaned = clean_text(raw)
    cleaned.encode("utf-8")
    orjson.dumps(cleaned)
    assert "\0" not in cleaned


def test_clean_mapping_cleans_keys_and_values() -> None:
    assert clean_mapping({"k\udc80": "v\0"}) == {"k\ufffd": "v"}
