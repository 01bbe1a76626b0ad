"""Validation of `Helicone-Target-Url` and fallback targets: only provider origins (as the operator
configured them) and origins the operator listed are reachable, so the gateway is never an open
proxy (or a way into the private network). Both lists are trusted even when private: a local model
server set as `HELIOGRAPH_<PROVIDER>_BASE_URL` was chosen by the operator."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from heliograph.domain.addresses import is_private_host
from heliograph.domain.errors import InvalidInput

# Where Azure OpenAI resources live; an origin elsewhere must be listed by the operator.
AZURE_DOMAINS = (
    ".openai.azure.com",
    ".cognitiveservices.azure.com",
    ".services.ai.azure.com",
    ".azure-api.net",
)


class TargetRejected(InvalidInput):
    """The target URL is malformed or not allowed; the message says which."""

    code = "invalid_target"


class TargetPolicy:
    def __init__(self, provider_origins: Iterable[str], extra_origins: Iterable[str]) -> None:
        origins = [*provider_origins, *extra_origins]
        self._trusted = {origin.rstrip("/").lower() for origin in origins}

    def check(self, target_url: str | None) -> str:
        """The validated origin (`scheme://host[:port]`) of `target_url`."""
        if not target_url:
            raise TargetRejected("the /gateway route needs a Helicone-Target-Url header")
        origin = origin_of(target_url)
        if origin in self._trusted:
            return origin  # configured or listed by the operator: trusted even when private
        if is_private_host(urlsplit(origin).hostname or ""):
            raise TargetRejected(f"target {origin} is a private or link-local address")
        raise TargetRejected(
            f"target {origin} is not an allowed origin; add it to HELIOGRAPH_ALLOWED_TARGET_ORIGINS"
        )

    def check_azure(self, api_base: str) -> str:
        """The origin of an Azure OpenAI resource named by `Helicone-OpenAI-Api-Base`: one the
        operator trusts, or an `https://` origin under Azure's own OpenAI domains."""
        origin = origin_of(api_base.strip().rstrip("/"))
        if origin in self._trusted:
            return origin
        host = urlsplit(origin).hostname or ""
        if origin.startswith("https://") and host.endswith(AZURE_DOMAINS):
            return origin
        raise TargetRejected(
            f"Helicone-OpenAI-Api-Base {origin} is not an Azure OpenAI resource"
            f" (https://<name>{AZURE_DOMAINS[0]}, …); add it to HELIOGRAPH_ALLOWED_TARGET_ORIGINS"
        )


def origin_of(target_url: str) -> str:
    try:
        parts = urlsplit(target_url.strip())
        port = parts.port
    except ValueError:
        raise TargetRejected(f"Helicone-Target-Url {target_url!r} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRejected(f"Helicone-Target-Url {target_url!r} must be an http(s) origin")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise TargetRejected(
            "Helicone-Target-Url must be an origin only (scheme://host[:port]); "
            "put the path in the request URL"
        )
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")
