"""Access tokens for Google Vertex AI from service-account keys (the JSON of a
`GOOGLE_APPLICATION_CREDENTIALS` file, or the same JSON kept in an organization's vault): one
google-auth `Credentials` per account, refreshed on a worker thread only when its token is
missing or within five minutes of expiry, one refresh at a time per account; when a refresh
fails, a token with time left still serves.

google-auth (and `requests`, its transport) is imported on first use, so a gateway process that
never calls Vertex does not carry it (about 16 MB)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING, Any

import orjson

from heliograph.domain.errors import InvalidInput

if TYPE_CHECKING:
    from google.oauth2.service_account import Credentials

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# The token endpoints Google's keys name; a key naming another is refused, since the gateway
# would otherwise post a signed assertion to wherever a stored document points.
GOOGLE_TOKEN_URIS = frozenset(
    {"https://oauth2.googleapis.com/token", "https://accounts.google.com/o/oauth2/token"}
)
REFRESH_MARGIN_S = 300.0
# A refused refresh is answered from memory this long, so a burst with a revoked key costs
# Google one exchange, not one per request.
FAILURE_HOLD_S = 5.0
# An old token is still used after a failed refresh while it has this long to live.
LAST_USE_S = 30.0
TOKEN_TIMEOUT_S = 10.0
MAX_ACCOUNTS = 1024
_REQUIRED = ("client_email", "private_key", "token_uri")


class InvalidServiceAccount(InvalidInput):
    """Not a usable service-account key; the message never quotes the document."""

    code = "invalid_service_account"


class TokenRefused(InvalidInput):
    """Google's token endpoint refused the key (deleted, disabled, or the wrong account)."""

    status = 401
    code = "google_token_refused"


class TokenUnavailable(InvalidInput):
    """Google's token endpoint could not be reached, or kept failing."""

    status = 502
    code = "google_token_unavailable"


def project_of(info_json: str) -> str:
    """The Google Cloud project a service-account key belongs to."""
    project = _parse(info_json).get("project_id")
    if not isinstance(project, str) or not project:
        raise InvalidServiceAccount("the service account key has no project_id")
    return project


@dataclass
class _Account:
    credentials: Credentials
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    token: str | None = None
    expires_at: float = 0.0  # seconds since the epoch
    failure: InvalidInput | None = None
    failed_at: float = 0.0


class VertexTokens:
    """Bearer tokens for Vertex AI, one cached `Credentials` per service-account key (known by
    the key's SHA-256, so the key itself is never a dictionary key or a log line)."""

    def __init__(
        self,
        *,
        token_uris: Collection[str] = GOOGLE_TOKEN_URIS,
        clock: Callable[[], float] = time.time,
        max_accounts: int = MAX_ACCOUNTS,
    ) -> None:
        self._token_uris = frozenset(token_uris)
        self._clock = clock
        self._max_accounts = max_accounts
        self._accounts: OrderedDict[str, _Account] = OrderedDict()

    async def token(self, info_json: str) -> str:
        """A token valid for at least five more minutes (refreshed first when it is not)."""
        account = self._account(info_json)
        if account.token is not None and self._fresh(account):
            return account.token
        async with account.lock:  # the others in a burst wait here for the one refresh
            if account.token is not None and self._fresh(account):
                return account.token
            failed_at = account.failed_at if account.failure is not None else None
            if failed_at is None or self._clock() - failed_at >= FAILURE_HOLD_S:
                try:
                    token, expires_at = await asyncio.to_thread(_refresh, account.credentials)
                except InvalidInput as error:
                    account.failure, account.failed_at = error, self._clock()
                else:
                    account.token, account.expires_at, account.failure = token, expires_at, None
                    return token
            # The refresh failed, now or moments ago: a token not yet expired still serves.
            if account.token is not None and self._clock() < account.expires_at - LAST_USE_S:
                return account.token
            assert account.failure is not None
            raise type(account.failure)(str(account.failure))

    def _fresh(self, account: _Account) -> bool:
        return self._clock() < account.expires_at - REFRESH_MARGIN_S

    def _account(self, info_json: str) -> _Account:
        key = hashlib.sha256(info_json.encode()).hexdigest()
        account = self._accounts.get(key)
        if account is None:
            account = _Account(_credentials(_parse(info_json), self._token_uris))
            self._accounts[key] = account
            if len(self._accounts) > self._max_accounts:
                self._accounts.popitem(last=False)  # keys rotated away; rebuilt if seen again
        self._accounts.move_to_end(key)
        return account


def _parse(info_json: str) -> dict[str, Any]:
    try:
        info = orjson.loads(info_json)
    except orjson.JSONDecodeError:
        raise InvalidServiceAccount("the service account key is not valid JSON") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise InvalidServiceAccount(
            'the JSON is not a service account key (its "type" must be "service_account")'
        )
    return info


def _credentials(info: dict[str, Any], token_uris: frozenset[str]) -> Credentials:
    missing = [name for name in _REQUIRED if not isinstance(info.get(name), str)]
    if missing:
        raise InvalidServiceAccount(f"the service account key lacks {', '.join(missing)}")
    if info["token_uri"] not in token_uris:
        raise InvalidServiceAccount("the service account key's token_uri is not Google's")
    if info.get("universe_domain", "googleapis.com") != "googleapis.com":
        raise InvalidServiceAccount("only service accounts of googleapis.com are supported")
    from google.oauth2.service_account import Credentials

    try:
        return Credentials.from_service_account_info(info, scopes=[SCOPE])  # type: ignore[no-untyped-call,no-any-return]
    except (ValueError, TypeError):
        # The library's message may describe the key material; ours names no part of it.
        raise InvalidServiceAccount("the service account key's private_key is unusable") from None


def _refresh(credentials: Credentials) -> tuple[str, float]:
    """A fresh token and its expiry (seconds since the epoch); runs on a worker thread."""
    import requests
    from google.auth import exceptions
    from google.auth.transport.requests import Request

    with requests.Session() as session:
        transport = Request(session)

        def timed(*args: Any, **kwargs: Any) -> Any:
            # google-auth waits 120 s by default: too long for a request someone is awaiting.
            return transport(*args, **{**kwargs, "timeout": TOKEN_TIMEOUT_S})

        try:
            credentials.refresh(timed)  # type: ignore[no-untyped-call]
        except exceptions.RefreshError as error:
            reason = str(error.args[0] if error.args else error)[:200]
            if getattr(error, "retryable", False):
                raise TokenUnavailable(f"Google's token endpoint failed: {reason}") from None
            raise TokenRefused(f"Google refused the service account's key: {reason}") from None
        except exceptions.TransportError:
            raise TokenUnavailable("Google's token endpoint could not be reached") from None
    expiry = credentials.expiry
    if not isinstance(credentials.token, str) or expiry is None:
        raise TokenUnavailable("Google's token endpoint answered without a token")
    return credentials.token, expiry.replace(tzinfo=UTC).timestamp()  # google-auth: naive UTC
