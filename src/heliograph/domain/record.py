"""What the gateway captures about one request, before any parsing.

A `RequestRecord` carries raw bytes and timings only; turning it into a stored row (model, usage,
cost) happens in ingest, off the hot path. Its `Attribution` (who and what the caller said the
request belongs to) is read once from the `Helicone-*` headers or a log message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# Statuses the gateway writes for outcomes that have no HTTP status of their own (Helicone's).
STATUS_CLIENT_CANCELLED = -3
STATUS_UPSTREAM_UNREACHABLE = 502
STATUS_UPSTREAM_TIMEOUT = 504
# Custom properties one request may hold, however they arrive (headers, a log, added later).
MAX_PROPERTIES = 64
# A stored row's properties: the custom ones, plus the three session headers and the four
# properties linking a request to a stored prompt (`domain/prompts.py`), kept as properties too.
MAX_STORED_PROPERTIES = MAX_PROPERTIES + 3 + 4
MAX_PROPERTY_NAME_CHARS = 256  # as `Helicone-Property-*` names are capped
MAX_PROPERTY_VALUE_CHARS = 10_000  # as `PUT /v1/request/{id}/property` takes them
# Text columns of a stored row, however the request arrives (model and provider: domain.pricing).
MAX_URL_CHARS = 8192
MAX_ATTRIBUTION_CHARS = 1000  # user, session id, path and name
MAX_ERROR_CHARS = 8192


@dataclass(slots=True)
class Attribution:
    """What the caller tells about a request: its user, properties and session, what not to
    store, and the model to log. Read once (headers or a log message) and not changed after,
    except `properties`, where the gateway adds its own outcomes (`Helicone-Fallback-Index`,
    rate-limit and moderation statuses). Not `frozen`: that would cost every request 0.7 µs."""

    user_id: str = ""
    properties: dict[str, str] = field(default_factory=dict)
    session_id: str = ""
    session_path: str = ""
    session_name: str = ""
    omit_request: bool = False
    omit_response: bool = False
    model_override: str = ""


ATTRIBUTION_FIELDS = tuple(Attribution.__dataclass_fields__)


@dataclass(slots=True)
class RequestRecord:
    request_id: str
    organization_id: str
    created_at: datetime
    provider: str
    target_url: str
    path: str
    method: str
    request_body: bytes
    status: int = 0
    response_body: bytes = b""
    response_encoding: str = ""
    response_created_at: datetime | None = None
    latency_ms: int = 0
    time_to_first_token_ms: int | None = None
    is_stream: bool = False
    attribution: Attribution = field(default_factory=Attribution)
    api_key_id: str = ""
    error: str = ""
    attempts: int = 1
    cache_enabled: bool = False
    cache_reference_id: str = ""  # the request whose cached response this one replayed
    cache_original_latency_ms: int = 0
    # The id was chosen by the caller (`Helicone-Request-Id`, a log message), so it may repeat.
    client_request_id: bool = False
    # Set when the log comes from elsewhere (Helicone's log message) and already carries usage.
    reported: dict[str, object] | None = None
    # The unified API: the bodies above are OpenAI's shape, as the client sent and received
    # them; when the provider spoke another API, these are what it was sent and answered.
    translated: bool = False
    provider_request_body: bytes = b""
    provider_response_body: bytes = b""
