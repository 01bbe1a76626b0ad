"""Request bodies too large for their row: one zstd-compressed JSON document per request, at
`<body_dir>/<organization id>/<request id>.json.zst`. Ingest writes them, the request queries
read them; the ids name the file, so only UUIDs are accepted."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import orjson
import zstandard


def body_document(request: bytes, response: bytes) -> bytes:
    """The document a body file holds: both bodies as text."""
    return orjson.dumps(
        {
            "request_body": request.decode("utf-8", "replace"),
            "response_body": response.decode("utf-8", "replace"),
        }
    )


def body_path(body_dir: Path, organization_id: str, request_id: str) -> Path:
    """Where bodies too large for the row are kept; ids are UUIDs, so the path is safe."""
    return body_dir / organization_id / f"{request_id}.json.zst"


def provider_body_document(request: bytes, response: bytes) -> bytes:
    """The provider's own request and response beside a translated request's: text, or base64
    when the bytes are not UTF-8 (Bedrock's binary event streams)."""
    document: dict[str, str] = {}
    for name, body in (("provider_request_body", request), ("provider_response_body", response)):
        try:
            document[name] = body.decode("utf-8")
        except UnicodeDecodeError:
            document[name] = base64.b64encode(body).decode()
            document[f"{name}_encoding"] = "base64"
    return orjson.dumps(document)


def write_provider_bodies(
    body_dir: Path, organization_id: str, request_id: str, document: bytes
) -> None:
    """Raises `ValueError` when an id is not a UUID, so the file stays under `body_dir`."""
    path = provider_body_path(body_dir, _uuid(organization_id), _uuid(request_id))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(zstandard.ZstdCompressor(level=3).compress(document))


def read_provider_bodies(
    body_dir: Path, organization_id: str, request_id: str
) -> dict[str, str] | None:
    """The provider's bodies kept beside a translated request, or None when there are none."""
    path = provider_body_path(body_dir, organization_id, request_id)
    try:
        compressed = path.read_bytes()
    except FileNotFoundError:
        return None
    loaded: dict[str, str] = orjson.loads(
        zstandard.ZstdDecompressor().decompressobj().decompress(compressed)
    )
    return loaded


def provider_body_path(body_dir: Path, organization_id: str, request_id: str) -> Path:
    return body_dir / organization_id / f"{request_id}.provider.json.zst"


def write_body_file(body_dir: Path, organization_id: str, request_id: str, document: bytes) -> None:
    """Raises `ValueError` when an id is not a UUID, so the file stays under `body_dir`."""
    path = body_path(body_dir, _uuid(organization_id), _uuid(request_id))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(zstandard.ZstdCompressor(level=3).compress(document))


def read_body_file(body_dir: Path, organization_id: str, request_id: str) -> dict[str, str]:
    path = body_path(body_dir, organization_id, request_id)
    document = zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes())
    loaded: dict[str, str] = orjson.loads(document)
    return loaded


def _uuid(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("not a UUID")
    return str(uuid.UUID(value))
