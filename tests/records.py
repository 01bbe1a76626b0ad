"""A `RequestRecord` as the gateway captures one (an OpenAI chat completion, gzip-compressed as
the provider sent it, stamped now), and a minimal stored row for tests that write the store."""

from __future__ import annotations

import gzip
import uuid
from datetime import UTC, datetime
from typing import Any

from heliograph.domain.record import RequestRecord

COMPLETION = b'{"model": "gpt-4o-mini", "usage": {"prompt_tokens": 10, "completion_tokens": 2}}'


def stored_row(organization_id: str, model: str, **changes: Any) -> dict[str, Any]:
    """A minimal `request_response` row as the store holds it (the rest takes the defaults), for
    tests that write to the store directly."""
    return {
        "request_id": str(uuid.uuid4()),
        "organization_id": organization_id,
        "request_created_at": "2026-03-10 10:00:00.000",
        "provider": "OPENAI",
        "model": model,
        "status": 200,
        "latency": 5,
        "is_stream": False,
        "pricing_status": "priced",
        **changes,
    }


def make_record(organization_id: str, **changes: Any) -> RequestRecord:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "request_id": str(uuid.uuid4()),
        "organization_id": organization_id,
        "created_at": now,
        "provider": "OPENAI",
        "target_url": "https://api.openai.com",
        "path": "/v1/chat/completions",
        "method": "POST",
        "request_body": b'{"model": "gpt-4o-mini"}',
        "status": 200,
        "response_body": gzip.compress(COMPLETION),
        "response_encoding": "gzip",
        "response_created_at": now,
        "latency_ms": 12,
        **changes,
    }
    return RequestRecord(**values)
