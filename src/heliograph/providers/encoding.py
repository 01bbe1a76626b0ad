"""Undoing the content encodings providers use (gzip, deflate, br, zstd) on a captured body."""

from __future__ import annotations

import gzip
import zlib

import brotli
import zstandard


def decode_body(body: bytes, encoding: str) -> bytes:
    """The body as the provider meant it, undoing any content encoding the gateway passed on."""
    try:
        for coding in reversed([c.strip().lower() for c in encoding.split(",") if c.strip()]):
            if coding in ("gzip", "x-gzip"):
                body = gzip.decompress(body)
            elif coding == "deflate":
                body = zlib.decompress(body)
            elif coding == "br":
                body = brotli.decompress(body)
            elif coding == "zstd":
                body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
    except (OSError, zlib.error, brotli.error, zstandard.ZstdError, EOFError):
        return body  # keep what arrived rather than nothing
    return body
