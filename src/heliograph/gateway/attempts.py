"""Sending one request upstream, with Helicone's retries and fallbacks.

Retries (`Helicone-Retry-*`) repeat the same target on 429, 5xx and connection errors with
exponential backoff and jitter, honouring `Retry-After`. Fallbacks (`Helicone-Fallbacks`) move to
the next target when the status is one the entry lists. Both happen before any byte has reached
the client: the gateway only starts its own response once an attempt is final.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from yarl import URL

from heliograph.domain.errors import InvalidInput
from heliograph.gateway.headers import HOP_BY_HOP
from heliograph.gateway.retry import RetryPolicy
from heliograph.providers.base import Provider
from heliograph.providers.model_registry import Route
from heliograph.translation.dialects import Dialect

RETRYABLE = frozenset({429, *range(500, 600)})
MAX_FALLBACKS = 10
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 token


@dataclass(frozen=True, slots=True)
class Hop:
    """What a target of the unified API adds: the provider and route it tries, and the dialect
    that turns its answer into OpenAI's shape (`ask_usage`: the gateway asked for the usage chunk
    and hides it)."""

    provider: Provider
    route: Route
    dialect: Dialect
    ask_usage: bool = False
    include_usage: bool = False  # the client asked for the usage chunk itself
    responses: dict[str, Any] | None = None  # the Responses API request, when one was made

    @property
    def translates(self) -> bool:
        """The client gets another shape than the provider's answer."""
        return self.dialect.translates or self.responses is not None


@dataclass(frozen=True, slots=True)
class Target:
    """Where one attempt goes: a URL, the headers and body to send, the statuses that move on."""

    url: str
    origin: str
    headers: list[tuple[str, str]]
    body: bytes
    on_codes: frozenset[int] = frozenset()
    hop: Hop | None = None


# How each attempt ended: the target's index, its status (None: no answer) and its latency.
AttemptObserver = Callable[[int, int | None, float], None]


@dataclass(slots=True)
class Outcome:
    response: aiohttp.ClientResponse | None
    target: Target
    target_index: int
    attempts: int = 0
    error: BaseException | None = None
    errors: list[str] = field(default_factory=list)


class InvalidFallbacks(InvalidInput):
    """`Helicone-Fallbacks` is not valid; the message says why."""

    code = "invalid_fallbacks"


def parse_fallbacks(text: str) -> list[dict[str, Any]]:
    """The entries of `Helicone-Fallbacks`, checked for shape; the caller checks the targets."""
    try:
        entries = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise InvalidFallbacks("Helicone-Fallbacks must be a JSON array") from None
    if not isinstance(entries, list) or not entries:
        raise InvalidFallbacks("Helicone-Fallbacks must be a non-empty JSON array")
    if len(entries) > MAX_FALLBACKS:
        raise InvalidFallbacks(f"Helicone-Fallbacks may list at most {MAX_FALLBACKS} entries")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("target-url"), str):
            raise InvalidFallbacks(f'fallback {index} needs a "target-url" string')
        if not isinstance(entry.get("headers", {}), dict):
            raise InvalidFallbacks(f'fallback {index}: "headers" must be an object')
        if not isinstance(entry.get("bodyKeyOverride", {}), dict):
            raise InvalidFallbacks(f'fallback {index}: "bodyKeyOverride" must be an object')
        for name, value in entry.get("headers", {}).items():
            _check_header(index, name, value)
    return entries


def _check_header(index: int, name: str, value: object) -> None:
    """An entry's headers carry credentials and content types, never framing or routing: `Host`,
    hop-by-hop headers and `Content-Length` belong to the gateway, `Helicone-*` to Heliograph."""
    lower = name.lower()
    if lower in HOP_BY_HOP or lower.startswith("helicone-"):
        raise InvalidFallbacks(f'fallback {index}: "headers" may not set {name}')
    if not HEADER_NAME.fullmatch(name):
        raise InvalidFallbacks(f"fallback {index}: {name!r} is not a valid header name")
    if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
        raise InvalidFallbacks(f"fallback {index}: the value of {name} must be one line of text")


def fallback_target(entry: Mapping[str, Any], origin: str, path: str, body: bytes) -> Target:
    headers = list(entry.get("headers", {}).items())  # checked by `parse_fallbacks`
    override = entry.get("bodyKeyOverride") or {}
    if override:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidFallbacks("bodyKeyOverride needs a JSON request body") from None
        if isinstance(document, dict):
            body = orjson.dumps({**document, **override})
    return Target(origin + path, origin, headers, body, _codes(entry.get("onCodes", [])))


def _codes(items: Any) -> frozenset[int]:
    codes: set[int] = set()
    if not isinstance(items, list):
        raise InvalidFallbacks("onCodes must be a list of codes or {from, to} ranges")
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            codes.add(item)
        elif (
            isinstance(item, dict)
            and isinstance(item.get("from"), int)
            and isinstance(item.get("to"), int)
        ):
            codes.update(range(item["from"], item["to"] + 1))
        else:
            raise InvalidFallbacks(f"onCodes entry {item!r} is not a code or a {{from, to}} range")
    return frozenset(codes)


async def send(
    session: aiohttp.ClientSession,
    method: str,
    targets: list[Target],
    retry: RetryPolicy | None,
    observe: AttemptObserver | None = None,
) -> Outcome:
    """Try each target in turn (with retries on each); the first final response wins."""
    outcome = Outcome(None, targets[0], 0)
    for index, target in enumerate(targets):
        outcome.target, outcome.target_index = target, index
        await _send_with_retries(session, method, target, retry, outcome, observe)
        last = index == len(targets) - 1
        moves_on = outcome.response is None or outcome.response.status in target.on_codes
        if last or not moves_on:
            return outcome
        if outcome.response is not None:
            outcome.response.close()
            outcome.response = None
    return outcome


async def _send_with_retries(
    session: aiohttp.ClientSession,
    method: str,
    target: Target,
    retry: RetryPolicy | None,
    outcome: Outcome,
    observe: AttemptObserver | None,
) -> None:
    retries = retry.retries if retry else 0
    for attempt in range(retries + 1):
        outcome.attempts += 1
        outcome.response, outcome.error = None, None
        started = time.perf_counter()
        try:
            response = await session.request(
                method,
                URL(target.url, encoded=True),  # as the client sent it, never re-quoted
                headers=target.headers,
                data=target.body,
                allow_redirects=False,
                auto_decompress=False,
            )
        except (TimeoutError, aiohttp.ClientError) as error:
            outcome.error = error
            outcome.errors.append(f"{type(error).__name__}: {error}")
            retry_after = None
            if observe is not None:
                observe(outcome.target_index, None, time.perf_counter() - started)
        else:
            outcome.response = response
            if observe is not None:
                observe(outcome.target_index, response.status, time.perf_counter() - started)
            if response.status not in RETRYABLE:
                return
            retry_after = response.headers.get("Retry-After")
        if retry is None or attempt == retries:
            return
        if outcome.response is not None:
            outcome.response.close()
        await asyncio.sleep(retry.delay_s(attempt + 1, retry_after))
