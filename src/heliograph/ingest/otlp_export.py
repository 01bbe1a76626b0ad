"""`OtlpExporter`: every stored request, sent on as an OpenTelemetry GenAI client span
(`otlp_export_spans.py`) to an OTLP/HTTP endpoint (`HELIOGRAPH_OTLP_ENDPOINT`). Rows arrive once
they are in the store (`BatchInserter.on_stored`) and wait in a bounded queue; a thread of its own
turns them into spans, posts them in gzipped protobuf batches and retries while the endpoint is
away. Export is best effort: a full queue drops its oldest spans (counted, and said once), since
the store, not the collector, is the record of truth.
"""

from __future__ import annotations

import gzip
import ipaddress
import logging
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import SplitResult, unquote, urlsplit

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from heliograph import __version__
from heliograph.domain.request_row import RequestRow
from heliograph.ingest.otlp_export_spans import Pending, export_request, pending
from heliograph.settings import InvalidSetting

# A generator of our own: the global one belongs to the application (and to tests' generators).
JITTER = random.Random()  # noqa: S311 - spreads work, guards nothing

log = logging.getLogger("heliograph.otlp")

TRACES_PATH = "/v1/traces"
# The OTLP/HTTP specification's retryable answers; any other refusal drops the batch.
RETRYABLE = frozenset({429, 502, 503, 504})
FIRST_BACKOFF_S, LONGEST_BACKOFF_S = 0.5, 30.0
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


# Configuration ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OtlpConfig:
    """Where spans go and how they are sent; `url` (which may hold a password) and `headers`
    (credentials, often) are never logged."""

    url: str = field(repr=False)
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
        if own_api and same_endpoint(url, own_api.rstrip("/") + TRACES_PATH):
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


def same_endpoint(url: str, own: str) -> bool:
    """Whether `url` reaches `own`, however spelt: scheme and host in any case, default ports,
    and, when `own` listens on loopback or on every interface, any loopback or unspecified
    address (`localhost`, 127.0.0.0/8, ::1, 0.0.0.0, ::) for its host."""
    try:
        there, here = urlsplit(url), urlsplit(own)
        ports = _port(there), _port(here)
    except ValueError:
        return False
    if there.scheme.lower() != here.scheme.lower() or ports[0] != ports[1]:
        return False
    if there.path.rstrip("/") != here.path.rstrip("/"):
        return False
    host, own_host = ((parts.hostname or "").lower().rstrip(".") for parts in (there, here))
    return host == own_host or (_this_host(own_host) and _this_host(host))


def _port(parts: SplitResult) -> int | None:
    return parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())


def _this_host(host: str) -> bool:
    """A name for this machine as a listener bound to loopback or to all interfaces sees it."""
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


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
            jitter = JITTER.uniform(0.75, 1.0)
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
    """Seconds a `Retry-After` header asks for; 0.0 (the usual backoff) when absent, a date,
    or not a positive finite number (`NaN` would make every wait NaN: no backoff at all)."""
    try:
        seconds = float(value)
    except ValueError:
        return 0.0
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0


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
