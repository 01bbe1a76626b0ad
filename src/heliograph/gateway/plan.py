"""Where a request goes: the provider and upstream URL from the route (or `Helicone-Target-Url`),
the body as forwarded (with usage asked for on OpenAI-style streams), and the list of targets to
try when `Helicone-Fallbacks` is given."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

import orjson
from aiohttp import web

from heliograph.domain.errors import InvalidInput
from heliograph.gateway.attempts import Target, fallback_target, parse_fallbacks
from heliograph.gateway.headers import HeliconeOptions, without_key
from heliograph.gateway.targets import TargetPolicy, TargetRejected
from heliograph.providers.base import Provider
from heliograph.providers.registry import provider_for_origin

# The routes on which `Helicone-OpenAI-Api-Base` sends a request to an Azure OpenAI resource.
AZURE_ROUTES = frozenset({"openai", "azure"})
AZURE_STREAM_USAGE_SINCE = "2024-09-01"  # the first API version that takes `stream_options`


class InvalidPath(InvalidInput):
    """The request path climbs out of its route (a `..` segment, in any spelling)."""

    code = "invalid_path"


@dataclass(slots=True)
class Plan:
    provider: Provider
    path: str
    is_stream: bool
    strip_usage: bool  # the gateway asked for the usage chunk and must hide it
    targets: list[Target]

    def provider_of(self, index: int, providers: Mapping[str, Provider]) -> Provider:
        if index == 0:
            return self.provider
        return provider_for_origin(providers, self.targets[index].origin)


def plan_request(
    request: web.Request,
    options: HeliconeOptions,
    body: bytes,
    headers: list[tuple[str, str]],
    providers: Mapping[str, Provider],
    targets: TargetPolicy,
) -> Plan:
    """Raises `KeyError` (unknown route), `InvalidPath`, `TargetRejected` or `InvalidFallbacks`."""
    prefix = request.match_info["prefix"]
    headers = without_key(headers, options.auth or "")
    entries = (
        parse_fallbacks(options.fallbacks) if prefix == "gateway" and options.fallbacks else []
    )
    if entries:
        origin = targets.check(entries[0]["target-url"])
        provider = provider_for_origin(providers, origin)
    elif prefix == "gateway":
        origin = targets.check(options.target_url)
        provider = provider_for_origin(providers, origin)
    elif options.openai_api_base and prefix in AZURE_ROUTES:  # Helicone's Azure style
        provider = providers["azure"]
        origin = targets.check_azure(options.openai_api_base)
    else:
        provider = providers[prefix]
        origin = provider.origin
        if not origin:
            raise TargetRejected(
                f"the {prefix} route needs Helicone-OpenAI-Api-Base (or"
                f" HELIOGRAPH_{prefix.upper()}_BASE_URL on the server)"
            )
    raw = request.raw_path  # forwarded as sent: still percent-encoded, query string included
    path = raw[raw.find("/", 1) :] if raw.find("/", 1) > 0 else "/"
    tail, _, query = path.partition("?")
    if "." in tail or "%" in tail or "\\" in tail:
        _refuse_dot_segments(tail)
    is_stream = any(marker in tail for marker in provider.stream_in_path) or "alt=sse" in query
    strip_usage = False
    if b'"stream"' in body:
        document = _json_object(body)
        is_stream = is_stream or (document is not None and document.get("stream") is True)
        asks = document is not None and _should_ask_usage(provider, tail, query, document)
        if is_stream and document is not None and asks:
            body, strip_usage = _ask_for_usage(document), True
    if strip_usage:  # the chunk filter reads plain SSE
        headers = [h for h in headers if h[0].lower() != "accept-encoding"]
        headers.append(("Accept-Encoding", "identity"))
    if not entries:
        return Plan(
            provider, path, is_stream, strip_usage, [Target(origin + path, origin, headers, body)]
        )
    auth = options.auth or ""
    planned = [
        _fallback(entry, targets, path, body, headers, strip_usage, auth) for entry in entries
    ]
    return Plan(provider, path, is_stream, strip_usage, planned)


def _fallback(
    entry: Mapping[str, object],
    targets: TargetPolicy,
    path: str,
    body: bytes,
    client_headers: list[tuple[str, str]],
    strip_usage: bool,
    auth: str,
) -> Target:
    target = fallback_target(entry, targets.check(str(entry["target-url"])), path, body)
    target.headers[:] = without_key(target.headers, auth)
    # An entry's headers replace the forwarded ones, so one provider's key never reaches another;
    # the body's content type is kept unless the entry sets its own.
    names = {name.lower() for name, _ in target.headers}
    for name, value in client_headers:
        if name.lower() == "content-type" and "content-type" not in names:
            target.headers.append((name, value))
    if strip_usage:
        target.headers.append(("Accept-Encoding", "identity"))
    return target


def _refuse_dot_segments(tail: str) -> None:
    """Upstreams and the proxies before them may decode `%2e%2e`, read `\\` as `/` or drop a
    `;parameter`, so the path is checked as decoded (twice, for double encoding) that way."""
    decoded = unquote(unquote(tail)).replace("\\", "/")
    if any(segment.partition(";")[0] == ".." for segment in decoded.split("/")):
        raise InvalidPath("the request path may not contain '..' segments")


def _should_ask_usage(
    provider: Provider, tail: str, query: str, document: dict[str, object]
) -> bool:
    if not provider.injects_stream_usage or not tail.endswith("completions"):
        return False
    if provider.name == "AZURE" and _api_version(query) < AZURE_STREAM_USAGE_SINCE:
        return False  # older API versions refuse `stream_options`
    options = document.get("stream_options")
    return not (isinstance(options, dict) and options.get("include_usage") is True)


def _api_version(query: str) -> str:
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == "api-version":
            return unquote(value)
    return ""


def _ask_for_usage(document: dict[str, object]) -> bytes:
    options = document.get("stream_options")
    merged = dict(options) if isinstance(options, dict) else {}
    merged["include_usage"] = True
    return orjson.dumps({**document, "stream_options": merged})


def _json_object(body: bytes) -> dict[str, object] | None:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
