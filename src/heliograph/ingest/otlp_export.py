"""`OtlpExporter`: every stored request, sent on as an OpenTelemetry GenAI client span to an
OTLP/HTTP endpoint (`HELIOGRAPH_OTLP_ENDPOINT`). Rows arrive once they are in the store
(`BatchInserter.on_stored`) and wait in a bounded queue; a thread of its own turns them into
spans, posts them in gzipped protobuf batches and retries while the endpoint is away. Export is
best effort: a full queue drops its oldest spans (counted, and said once), since the store, not
the collector, is the record of truth.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import random
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from heliograph import __version__
from heliograph.domain.request_row import BODY_COLUMNS, RequestRow
from heliograph.settings import InvalidSetting

log = logging.getLogger("heliograph.otlp")

TRACES_PATH = "/v1/traces"
# The OTLP/HTTP specification's retryable answers; any other refusal drops the batch.
RETRYABLE = frozenset({429, 502, 503, 504})
FIRST_BACKOFF_S, LONGEST_BACKOFF_S = 0.5, 30.0
RESPONSE_ID_SCAN = 4096  # how far into a response body its id is looked for
BODY_CHARS = 4096  # of each body, with HELIOGRAPH_OTLP_INCLUDE_BODIES: the queue stays bounded
# The provider's id of a response: OpenAI and Anthropic say `id` first, Gemini `responseId`.
RESPONSE_ID = re.compile(r'"(?:id|responseId)"\s*:\s*"([^"\\]{1,256})"')
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
RESOURCE = {"service.name": "heliograph", "service.version": __version__}
# The semantic conventions' names for the providers Heliograph knows under other names.
PROVIDER_NAMES = {
    "GOOGLE": "gcp.gemini",
    "MISTRAL": "mistral_ai",
    "X": "x_ai",
}


@dataclass(frozen=True, slots=True)
class OtlpConfig:
    """Where spans go and how they are sent; `headers` (credentials, often) are never logged."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    batch_spans: int = 512
    interval_s: float = 1.0
    queue_spans: int = 10_000
    timeout_s: float = 10.0
    include_bodies: bool = False

    @classmethod
    def from_settings(
        cls, endpoint: str, headers: str, own_api: str = "", *, include_bodies: bool = False
    ) -> OtlpConfig | None:
        """The configuration the two settings ask for, None when export is off; a value that
        cannot be used is an `InvalidSetting` naming its variable. `own_api` is this
        Heliograph's API URL: its OTLP ingest would store each span as a request, to be
        exported again, for ever."""
        if not endpoint.strip():
            return None
        url = traces_url(endpoint)
        if own_api and url == own_api.rstrip("/") + TRACES_PATH:
            raise InvalidSetting(
                "HELIOGRAPH_OTLP_ENDPOINT names this Heliograph's own OTLP ingest; every span"
                " would come back as a request and be exported again"
            )
        return cls(url, parse_headers(headers), include_bodies=include_bodies)


def traces_url(endpoint: str) -> str:
    """Where to post spans: `endpoint` is a base URL (as `OTEL_EXPORTER_OTLP_ENDPOINT` is) to
    which `/v1/traces` is added, unless it already ends so."""
    endpoint = endpoint.strip()
    try:
        parts = urlsplit(endpoint)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
        usable = usable and not parts.query and not parts.fragment and parts.port != 0
    except ValueError:  # a port that is not a number
        usable = False
    if not usable:
        raise InvalidSetting(
            "HELIOGRAPH_OTLP_ENDPOINT must be an http:// or https:// URL without query or"
            f" fragment, like http://collector:4318, not {endpoint!r}"
        )
    base = endpoint.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


def parse_headers(raw: str) -> dict[str, str]:
    """`name=value` pairs separated by commas, values percent-encoded where they must hold a
    comma (as `OTEL_EXPORTER_OTLP_HEADERS`). A refusal names the entry, never its value."""
    headers: dict[str, str] = {}
    for number, entry in enumerate(raw.split(","), start=1):
        if not entry.strip():
            continue
        name, equals, value = entry.partition("=")
        name, value = name.strip(), unquote(value.strip())
        if not equals or not HEADER_NAME.fullmatch(name) or not value.isprintable():
            raise InvalidSetting(
                f"HELIOGRAPH_OTLP_HEADERS must be comma-separated name=value pairs; entry"
                f" {number} is not (values are not shown)"
            )
        headers[name.lower()] = value
    return headers


# Rows become spans -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pending:
    """A stored row waiting to be exported: its columns without the bodies (the queue must stay
    small), the provider's response id, read from the body before it was let go, and the
    bodies' first `BODY_CHARS` when they are exported too."""

    row: Mapping[str, object]
    response_id: str
    bodies: tuple[str, str] = ("", "")


def pending(row: RequestRow, include_bodies: bool = False) -> Pending:
    columns = {name: value for name, value in row.items() if name not in BODY_COLUMNS}
    response = row.get("response_body") or ""
    if not include_bodies:
        return Pending(columns, response_id_of(response))
    request = row.get("request_body") or ""
    bodies = (request[:BODY_CHARS], response[:BODY_CHARS])
    return Pending(columns, response_id_of(response), bodies)


def response_id_of(body: str) -> str:
    match = RESPONSE_ID.search(body, 0, RESPONSE_ID_SCAN)
    return match.group(1) if match else ""


def operation_of(path: str) -> str:
    """The GenAI operation a request path names (`gen_ai.operation.name`)."""
    path = path.split("?", 1)[0].rstrip("/").lower()
    if path.endswith(("/chat/completions", "/messages", "/responses")):
        return "chat"
    if path.endswith("/completions"):
        return "text_completion"
    if path.endswith("/embeddings") or ":embedcontent" in path or ":batchembed" in path:
        return "embeddings"
    if ":generatecontent" in path or ":streamgeneratecontent" in path:
        return "generate_content"
    last = path.rsplit("/", 1)[-1]
    return last or "chat"


def trace_id_of(row: Mapping[str, object]) -> bytes:
    """The request id's bytes, or, for a request in a session, an id every request of that
    session shares, so a session is one trace."""
    session, organization = row.get("session_id"), row.get("organization_id")
    if session:
        return _digest(f"{organization}|{session}")[:16]
    request_id = str(row.get("request_id", ""))
    try:
        return uuid.UUID(request_id).bytes
    except ValueError:
        return _digest(request_id)[:16]


def span_id_of(row: Mapping[str, object]) -> bytes:
    return _digest(str(row.get("request_id", "")))[:8]


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def export_request(items: list[Pending]) -> tuple[ExportTraceServiceRequest, int]:
    """One request holding the spans of `items`, and how many rows made no span. Spans are
    filled in place (`add()`): building messages and copying them in costs twice as much."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    _set_attributes(resource_spans.resource.attributes, RESOURCE)
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name, scope_spans.scope.version = "heliograph", __version__
    unmade = 0
    for item in items:
        try:
            fill_span(scope_spans.spans.add(), item)
        except Exception as error:  # one odd row must not cost the batch
            del scope_spans.spans[-1]
            unmade += 1
            log.warning("request %s makes no span: %s", item.row.get("request_id"), error)
    return request, unmade


def fill_span(span: Span, item: Pending) -> None:
    row = item.row
    model = str(row.get("request_model") or row.get("model") or "")
    operation = operation_of(str(row.get("request_path", "")))
    status = _int(row.get("status")) or 0
    failed = status >= 400 or status < 0
    span.trace_id, span.span_id = trace_id_of(row), span_id_of(row)
    span.name = f"{operation} {model}".strip()
    span.kind = Span.SpanKind.SPAN_KIND_CLIENT
    span.start_time_unix_nano = _unix_ns(str(row["request_created_at"]))
    latency_ms = max(_int(row.get("latency")) or 0, 0)
    span.end_time_unix_nano = span.start_time_unix_nano + latency_ms * 1_000_000
    if failed:
        span.status.code = Status.StatusCode.STATUS_CODE_ERROR
        span.status.message = str(row.get("error") or "")[:1024]
    _set_attributes(span.attributes, _attributes(item, operation, model, status, failed))


def _attributes(
    item: Pending, operation: str, model: str, status: int, failed: bool
) -> dict[str, object]:
    row = item.row
    provider = str(row.get("provider", ""))
    provider_name = PROVIDER_NAMES.get(provider, provider.lower())
    values: dict[str, object] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": provider_name,
        "gen_ai.system": provider_name,  # the name before semantic conventions 1.37
        "gen_ai.request.model": model,
        "gen_ai.response.model": row.get("response_model") or row.get("model"),
        "gen_ai.response.id": item.response_id,
        **_usage(row),
        "error.type": _error_type(status) if failed else None,
        "server.address": _host(str(row.get("target_url", ""))),
        "heliograph.request_id": row.get("request_id"),
        "heliograph.organization_id": row.get("organization_id"),
        "heliograph.status": status,
        "heliograph.cost_usd": (_int(row.get("cost")) or 0) / 1e9,
        "heliograph.pricing_status": row.get("pricing_status"),
        "heliograph.time_to_first_token_ms": row.get("time_to_first_token"),
        "heliograph.stream": row.get("is_stream"),
        "user.id": row.get("user_id"),
        "session.id": row.get("session_id"),
        "heliograph.session.path": row.get("session_path"),
        "heliograph.session.name": row.get("session_name"),
        # As stored: redacted when the organization asked, empty when the caller omitted them.
        "heliograph.request.body": item.bodies[0],
        "heliograph.response.body": item.bodies[1],
    }
    properties = row.get("properties")
    if isinstance(properties, Mapping):
        for key, value in properties.items():
            values[f"heliograph.property.{key}"] = value
    return values


def _set_attributes(target: Any, values: Mapping[str, object]) -> None:
    """Add each value that is set to `target` (a repeated `KeyValue` field), typed as it is."""
    add = target.add
    for key, value in values.items():
        if value is None or value == "":
            continue
        slot = add(key=key).value
        if isinstance(value, bool):
            slot.bool_value = value
        elif isinstance(value, int):
            slot.int_value = value
        elif isinstance(value, float):
            slot.double_value = value
        else:
            slot.string_value = str(value)


def _usage(row: Mapping[str, object]) -> dict[str, object]:
    """Token counts as the conventions count them: input with cached tokens, output with
    reasoning tokens (Heliograph's columns keep each kind apart)."""
    prompt, completion = _int(row.get("prompt_tokens")), _int(row.get("completion_tokens"))
    cache_read = _int(row.get("prompt_cache_read_tokens")) or 0
    cache_write = _int(row.get("prompt_cache_write_tokens")) or 0
    reasoning = _int(row.get("reasoning_tokens")) or 0
    usage: dict[str, object] = {}
    if prompt is not None:
        usage["gen_ai.usage.input_tokens"] = prompt + cache_read + cache_write
        usage["gen_ai.usage.cache_read.input_tokens"] = cache_read
        usage["gen_ai.usage.cache_creation.input_tokens"] = cache_write
    if completion is not None:
        usage["gen_ai.usage.output_tokens"] = completion + reasoning
        usage["heliograph.usage.reasoning_tokens"] = reasoning
    if prompt is not None or completion is not None:
        total = (prompt or 0) + cache_read + cache_write + (completion or 0) + reasoning
        usage["heliograph.usage.total_tokens"] = total
    return usage


def _error_type(status: int) -> str:
    return "cancelled" if status == -3 else str(status)


def _host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _unix_ns(stored: str) -> int:
    """A stored time (`YYYY-MM-DD hh:mm:ss.fff`, UTC) in nanoseconds since the epoch; parsed
    with `fromisoformat`, a tenth of `strptime`'s cost."""
    moment = datetime.fromisoformat(stored).replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000) * 1_000_000


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# The exporter ------------------------------------------------------------------------------


class OtlpExporter:
    """Takes stored rows (`rows_stored`, an inserter listener) and posts them as spans from its
    own thread. Nothing here ever waits on the endpoint but that thread."""

    def __init__(self, config: OtlpConfig) -> None:
        self.config = config
        self._queue: deque[Pending] = deque()
        self._wake = threading.Condition()
        self._closing = threading.Event()
        self._close_by = 0.0
        self._client = httpx.Client(
            timeout=config.timeout_s,
            headers={
                **config.headers,
                "content-type": "application/x-protobuf",
                "content-encoding": "gzip",
                "user-agent": f"heliograph/{__version__}",
            },
        )
        self._quiet = QuietPosts(str(httpx.URL(config.url)))
        logging.getLogger("httpx").addFilter(self._quiet)
        self._thread = threading.Thread(target=self._run, name="otlp-export", daemon=True)
        self._said: set[str] = set()  # troubles logged since export last worked
        self._in_flight = 0  # spans of the batch being posted
        self._final = False  # closed: the counts no longer change
        self.exported = 0
        self.dropped = 0  # queue overflow, refused batches and spans left at shutdown
        self.posts = 0

    def start(self) -> None:
        where = urlsplit(self.config.url)
        log.info("exporting requests as spans to %s://%s", where.scheme, where.hostname)
        self._thread.start()

    def rows_stored(self, rows: list[RequestRow]) -> None:
        """Queue the rows' spans; on a full queue the oldest are dropped. Called on the
        inserter's thread, so it only copies and appends."""
        items = [pending(row, self.config.include_bodies) for row in rows]
        with self._wake:
            if self._final:
                return  # closed: nothing would send them
            overflow = len(self._queue) + len(items) - self.config.queue_spans
            if overflow > 0:
                oldest = min(overflow, len(self._queue))
                for _ in range(oldest):
                    self._queue.popleft()
                del items[: overflow - oldest]  # more came at once than the queue holds
                self._drop(overflow, "the export queue is full (is the OTLP endpoint down?)")
            self._queue.extend(items)
            if len(self._queue) >= self.config.batch_spans:
                self._wake.notify()

    def close(self, deadline_s: float = 5.0) -> None:
        """Send what is queued within `deadline_s`, then stop. What is left is dropped, and so
        is a batch whose post still hangs (its thread ends with its timeout; the counts are
        final from here)."""
        with self._wake:
            self._close_by = time.monotonic() + deadline_s
            self._closing.set()
            self._wake.notify()
        if self._thread.ident is None:
            self._client.close()  # never started
        else:
            self._thread.join(deadline_s)
        with self._wake:
            left = len(self._queue) + (self._in_flight if self._thread.is_alive() else 0)
            self._queue.clear()
            self.dropped += left
            self._final = True
        if left:
            log.warning("OTLP export stopped with %d spans unsent", left)
        logging.getLogger("httpx").removeFilter(self._quiet)

    def _run(self) -> None:
        try:
            while (batch := self._next_batch()) is not None:
                try:
                    self._deliver(batch)
                except Exception as error:  # the thread outlives any bug; the batch is lost
                    self._drop(self._in_flight, f"{type(error).__name__}: {error}")
                finally:
                    self._in_flight = 0
        finally:
            self._client.close()

    def _next_batch(self) -> list[Pending] | None:
        """Up to `batch_spans` spans once that many wait or `interval_s` has passed; None once
        closing with nothing left."""
        with self._wake:
            due = time.monotonic() + self.config.interval_s
            while not self._closing.is_set() and len(self._queue) < self.config.batch_spans:
                left = due - time.monotonic()
                if left <= 0:
                    break
                self._wake.wait(left)
            if not self._queue:
                return None if self._closing.is_set() else []
            self._in_flight = min(self.config.batch_spans, len(self._queue))
            return [self._queue.popleft() for _ in range(self._in_flight)]

    def _deliver(self, batch: list[Pending]) -> None:
        if not batch:
            return
        request, unmade = export_request(batch)
        if unmade:
            self._drop(unmade, "some rows make no span")
        body = gzip.compress(request.SerializeToString(), compresslevel=5)
        spans = len(batch) - unmade
        self._in_flight = spans
        backoff = FIRST_BACKOFF_S
        while (retry_after := self._post(body, spans)) is not None:
            jitter = random.uniform(0.75, 1.0)  # noqa: S311 - spreads retries, guards nothing
            wait = min(retry_after or backoff * jitter, LONGEST_BACKOFF_S)
            backoff = min(backoff * 2, LONGEST_BACKOFF_S)
            if not self._pause(wait):
                self._drop(spans, "the OTLP endpoint did not take them before shutdown")
                return

    def _pause(self, wait: float) -> bool:
        """Wait before a retry; False when that would pass the shutdown deadline. A close cuts
        a wait short, so the last tries happen within its deadline."""
        if not self._closing.is_set():
            self._closing.wait(wait)
            return True
        if time.monotonic() + wait >= self._close_by:
            return False
        time.sleep(wait)
        return True

    def _post(self, body: bytes, spans: int) -> float | None:
        """Post one batch: None when it is done with (sent, or refused for good), else how long
        to wait before trying again (0: the usual backoff)."""
        timeout = self.config.timeout_s
        if self._closing.is_set():
            timeout = max(min(timeout, self._close_by - time.monotonic()), 0.1)
        self.posts += 1
        try:
            response = self._client.post(self.config.url, content=body, timeout=timeout)
        except httpx.HTTPError as error:
            self._say(f"cannot reach the OTLP endpoint ({type(error).__name__}); retrying")
            return 0.0
        if response.is_success:
            self._sent(spans, response)
            return None
        if response.status_code in RETRYABLE:
            self._say(f"the OTLP endpoint answered {response.status_code}; retrying")
            return _retry_after(response.headers.get("retry-after", ""))
        self._drop(spans, f"the OTLP endpoint refused them with {response.status_code}")
        return None

    def _sent(self, spans: int, response: httpx.Response) -> None:
        with self._wake:
            if not self._final:
                self.exported += spans
        if self._said:
            log.info("OTLP export works again (%d spans dropped so far)", self.dropped)
            self._said.clear()
        rejected = _rejected(response.content)
        if rejected:
            log.warning("the OTLP endpoint rejected %d of %d spans", rejected, spans)

    def _drop(self, count: int, why: str) -> None:
        with self._wake:  # both threads drop
            if not self._final:
                self.dropped += count
        self._say(f"dropping spans: {why}")

    def _say(self, trouble: str) -> None:
        """Log a trouble once until export works again (not on every batch while it lasts)."""
        if trouble not in self._said:
            self._said.add(trouble)
            log.warning("%s", trouble)


class QuietPosts(logging.Filter):
    """Keeps httpx from logging each export (an INFO line a second, naming the endpoint):
    troubles are said by the exporter, once."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = url

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (isinstance(args, tuple) and len(args) > 1 and str(args[1]) == self._url)


def _retry_after(value: str) -> float:
    try:
        return max(float(value), 0.0)
    except ValueError:
        return 0.0  # absent, or a date: the usual backoff


def _rejected(content: bytes) -> int:
    """Spans a successful answer says were rejected (OTLP's partial success)."""
    if not content:
        return 0
    answer = ExportTraceServiceResponse()
    try:
        answer.ParseFromString(content)
    except Exception:  # protobuf's DecodeError (a JSON answer, say): nothing to learn from it
        return 0
    return answer.partial_success.rejected_spans
