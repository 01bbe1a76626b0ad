"""Single sign-on with OpenID Connect: the authorization-code flow with PKCE (Authlib's httpx
client), the issuer's discovery document and signing keys (fetched once, then cached), and the
checks an ID token must pass (joserfc). A flow under way lives in the app DB's `login_flows`, so
whichever API process receives the callback can finish it, once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
from authlib.integrations.base_client import OAuthError  # type: ignore[import-untyped]
from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from sqlalchemy import CursorResult, Engine, delete
from sqlalchemy.orm import Session, sessionmaker

from heliograph.appdb.engine import session_factory
from heliograph.appdb.models import LoginFlow
from heliograph.domain.errors import InvalidInput
from heliograph.services.accounts import SsoClaims, token_hash
from heliograph.settings import Settings

log = logging.getLogger("heliograph.sso")

SCOPE = "openid email profile"
FLOW_TTL = timedelta(minutes=10)
TIMEOUT_S = 10.0
LEEWAY_S = 60  # clock skew allowed between the issuer and us, on `exp`, `iat` and `nbf`
MAX_REDIRECT = 500  # `login_flows.redirect_to`
MAX_ID_TOKEN = 64 * 1024
MAX_MESSAGE = 200
# Signatures by the issuer's published keys only: never `none`, never a MAC keyed by our secret.
SIGNING_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
AUTH_METHODS = ("client_secret_basic", "client_secret_post")


class SsoFailed(InvalidInput):
    """The sign-in cannot go on: an unknown, used or expired flow, or the issuer said no."""

    status = 400
    code = "sso_failed"


class SsoDisabled(SsoFailed):
    status = 404
    code = "sso_disabled"


class IdTokenRefused(SsoFailed):
    """What the issuer answered does not verify (signature, issuer, audience, expiry, nonce)."""

    status = 403
    code = "sso_refused"


class IssuerUnavailable(SsoFailed):
    status = 502
    code = "sso_issuer_unavailable"


@dataclass(frozen=True, slots=True)
class SsoConfig:
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str


def open_sso(settings: Settings, engine: Engine, callback_path: str) -> SsoService | None:
    """The service over the app DB, or None when single sign-on is off."""
    config = sso_config(settings, callback_path)
    return None if config is None else SsoService(config, session_factory(engine))


def sso_config(settings: Settings, callback_path: str) -> SsoConfig | None:
    """The configuration from settings, or None when single sign-on is off (it needs all three
    of issuer, client id and secret)."""
    parts = (settings.oidc_issuer, settings.oidc_client_id, settings.oidc_client_secret)
    if not all(parts):
        if any(parts):
            log.warning(
                "single sign-on is off: set all of HELIOGRAPH_OIDC_ISSUER, "
                "HELIOGRAPH_OIDC_CLIENT_ID and HELIOGRAPH_OIDC_CLIENT_SECRET"
            )
        return None
    redirect_uri = f"{settings.resolved_public_url}{callback_path}"
    return SsoConfig(parts[0].strip().rstrip("/"), parts[1], parts[2], redirect_uri)


@dataclass(frozen=True, slots=True)
class Discovery:
    """What single sign-on uses of the issuer's `/.well-known/openid-configuration`."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    token_auth_method: str
    algorithms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Flow:
    code_verifier: str
    nonce: str
    redirect_to: str


@dataclass(frozen=True, slots=True)
class Started:
    """Where to send the browser, and the state its callback must bring back."""

    url: str
    state: str


@dataclass(frozen=True, slots=True)
class Finished:
    claims: SsoClaims
    redirect_to: str


def flow_id(state: str) -> str:
    """What `login_flows` keeps of a state: its SHA-256, so the table holds nothing replayable."""
    return token_hash(state)


def local_path(candidate: str) -> str:
    """`candidate` when it is a path on this site, else "/": never another origin, whether
    spelt `//host`, `/\\host`, with a scheme, or with characters browsers drop (tabs, newlines)."""
    if (
        not candidate.startswith("/")
        or candidate.startswith(("//", "/\\"))
        or "\\" in candidate
        or not candidate.isprintable()
        or any(character.isspace() for character in candidate)
        or len(candidate) > MAX_REDIRECT
    ):
        return "/"
    return candidate


def shorten(text: object) -> str:
    """An issuer's text, made safe to show: one printable line, at most `MAX_MESSAGE` chars."""
    line = " ".join(str(text).split())
    line = "".join(character for character in line if character.isprintable())
    return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 1] + "…"


class SsoService:
    def __init__(
        self, config: SsoConfig, sessions: sessionmaker[Session], timeout_s: float = TIMEOUT_S
    ) -> None:
        self.config = config
        self._sessions = sessions
        self._timeout_s = timeout_s
        self._discovery: Discovery | None = None
        self._keys: KeySet | None = None
        self._lock = asyncio.Lock()  # one fetch of the discovery document or keys at a time

    # The flow

    async def start(self, next_path: str) -> Started:
        """A new flow, kept for `FLOW_TTL`, and the issuer's authorization URL for it."""
        discovery = await self.discovery()
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        flow = Flow(secrets.token_urlsafe(48), nonce, local_path(next_path))
        await asyncio.to_thread(self._save_flow, state, flow)
        async with self._client(discovery) as client:
            url, _ = client.create_authorization_url(
                discovery.authorization_endpoint,
                state=state,
                code_verifier=flow.code_verifier,
                nonce=nonce,
            )
        return Started(str(url), state)

    async def finish(self, code: str, state: str) -> Finished:
        """Take the flow (once), exchange the code, and verify who the issuer says signed in."""
        flow = await asyncio.to_thread(self.take_flow, state)
        if flow is None:
            raise SsoFailed("this sign-in is unknown, already used or expired; start again")
        discovery = await self.discovery()
        token = await self._exchange(discovery, code, flow.code_verifier)
        claims = await self._claims(discovery, token, flow.nonce)
        return Finished(claims, flow.redirect_to)

    async def abandon(self, state: str) -> None:
        """End a flow that cannot finish (the issuer said no, or another browser called back),
        so its state cannot be used again."""
        await asyncio.to_thread(self.take_flow, state)

    def _save_flow(self, state: str, flow: Flow) -> None:
        now = datetime.now(UTC)
        with self._sessions.begin() as db:
            db.execute(delete(LoginFlow).where(LoginFlow.expires_at < now))  # abandoned flows
            db.add(
                LoginFlow(
                    id=flow_id(state),
                    code_verifier=flow.code_verifier,
                    nonce=flow.nonce,
                    redirect_to=flow.redirect_to,
                    created_at=now,
                    expires_at=now + FLOW_TTL,
                )
            )

    def take_flow(self, state: str) -> Flow | None:
        """The flow for `state`, deleted as it is read: of two callbacks racing with the same
        state, only the one whose delete removed the row gets it."""
        if not state or len(state) > 200:
            return None
        with self._sessions.begin() as db:
            found = db.get(LoginFlow, flow_id(state))
            if found is None:
                return None
            removed = db.execute(delete(LoginFlow).where(LoginFlow.id == found.id))
            if cast(CursorResult[Any], removed).rowcount != 1:
                return None
            expires_at = found.expires_at
            if expires_at.tzinfo is None:  # SQLite hands back naive datetimes, all UTC
                expires_at = expires_at.replace(tzinfo=UTC)
            if expires_at <= datetime.now(UTC):
                return None
            return Flow(found.code_verifier, found.nonce, found.redirect_to)

    # The issuer

    async def discovery(self) -> Discovery:
        """The issuer's discovery document, fetched on first use and then kept."""
        async with self._lock:
            if self._discovery is None:
                url = f"{self.config.issuer}/.well-known/openid-configuration"
                document = await self._get_json(url, "discovery document")
                self._discovery = parse_discovery(document, self.config.issuer)
            return self._discovery

    async def _signing_keys(self, discovery: Discovery, refresh: bool) -> KeySet:
        async with self._lock:
            if self._keys is None or refresh:
                self._keys = parse_keys(await self._get_json(discovery.jwks_uri, "keys"))
            return self._keys

    def _client(self, discovery: Discovery) -> Any:
        return AsyncOAuth2Client(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            token_endpoint_auth_method=discovery.token_auth_method,
            scope=SCOPE,
            redirect_uri=self.config.redirect_uri,
            code_challenge_method="S256",
            timeout=self._timeout_s,
            follow_redirects=False,
        )

    async def _exchange(self, discovery: Discovery, code: str, verifier: str) -> dict[str, Any]:
        async with self._client(discovery) as client:
            with self._calling("token endpoint"):
                async with asyncio.timeout(self._timeout_s):
                    token = await client.fetch_token(
                        discovery.token_endpoint,
                        grant_type="authorization_code",
                        code=code,
                        code_verifier=verifier,
                    )
        return dict(token)

    async def _get_json(
        self, url: str, what: str, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=self._timeout_s, follow_redirects=False) as http:
            with self._calling(what):
                async with asyncio.timeout(self._timeout_s):
                    response = await http.get(
                        url, headers={"Accept": "application/json", **(headers or {})}
                    )
                if response.status_code != 200:
                    raise IssuerUnavailable(
                        f"the identity provider's {what} answered HTTP {response.status_code}"
                    )
                document = response.json()
        if not isinstance(document, dict):
            raise IssuerUnavailable(f"the identity provider's {what} is not a JSON object")
        return document

    @contextlib.contextmanager
    def _calling(self, what: str) -> Iterator[None]:
        """The issuer's failures as clear errors: unreachable or slow is a 502, a refusal 400."""
        try:
            yield
        except InvalidInput:
            raise
        except (TimeoutError, httpx.TimeoutException):
            raise IssuerUnavailable(
                f"the identity provider's {what} did not answer within {self._timeout_s:g} s"
            ) from None
        except httpx.HTTPError as error:
            raise IssuerUnavailable(
                f"could not reach the identity provider's {what} ({type(error).__name__})"
            ) from None
        except OAuthError as error:
            raise SsoFailed(
                f"the identity provider refused the sign-in: {shorten(error.error)}: "
                f"{shorten(error.description or '')}"
            ) from None
        except ValueError:  # a body that is not JSON
            raise IssuerUnavailable(
                f"the identity provider's {what} did not answer with JSON"
            ) from None

    # The ID token

    async def verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims once its signature (by the issuer's keys, fetched again once
        for a key id not seen before), issuer, audience, expiry and nonce all check out."""
        discovery = await self.discovery()
        if len(id_token) > MAX_ID_TOKEN:
            raise IdTokenRefused("the ID token is too large")
        keys = await self._signing_keys(discovery, refresh=False)
        try:
            try:
                token = jwt.decode(id_token, keys, algorithms=list(discovery.algorithms))
            except InvalidKeyIdError:  # the issuer may have rotated its keys
                keys = await self._signing_keys(discovery, refresh=True)
                token = jwt.decode(id_token, keys, algorithms=list(discovery.algorithms))
            jwt.JWTClaimsRegistry(
                leeway=LEEWAY_S,
                iss={"essential": True, "value": discovery.issuer},
                aud={"essential": True, "value": self.config.client_id},
                exp={"essential": True},
                sub={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(token.claims)
        except (JoseError, ValueError, TypeError, KeyError) as error:
            reason = str(error) if isinstance(error, JoseError) else "malformed"
            raise IdTokenRefused(f"the ID token does not verify ({shorten(reason)})") from None
        claims = token.claims
        audience = claims["aud"]
        authorized = claims.get("azp")
        if (isinstance(audience, list) and len(audience) > 1 and authorized is None) or (
            authorized is not None and authorized != self.config.client_id
        ):
            raise IdTokenRefused("the ID token was issued to another client (azp)")
        if not isinstance(claims["sub"], str) or len(claims["sub"]) > 255:
            raise IdTokenRefused("the ID token's subject is not a usable identifier")
        return claims

    async def _claims(self, discovery: Discovery, token: dict[str, Any], nonce: str) -> SsoClaims:
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise IdTokenRefused("the identity provider sent no ID token")
        claims = await self.verify_id_token(id_token, nonce)
        source = claims  # the e-mail and its verification come from one source, never mixed
        if not isinstance(claims.get("email"), str) or "email_verified" not in claims:
            info = await self._userinfo(discovery, token, claims["sub"])
            if info is not None and isinstance(info.get("email"), str):
                source = info
        email = source.get("email")
        if not isinstance(email, str) or not email:
            raise IdTokenRefused("the identity provider gave no e-mail address")
        verified = source.get("email_verified") in (True, "true")  # some issuers send a string
        name = claims.get("name") or source.get("name") or ""
        subject: str = claims["sub"]
        return SsoClaims(discovery.issuer, subject, email, verified, shorten(name))

    async def _userinfo(
        self, discovery: Discovery, token: dict[str, Any], subject: str
    ) -> dict[str, Any] | None:
        """The userinfo endpoint's claims (when the ID token lacks the e-mail's); they must be
        about the ID token's subject."""
        access_token = token.get("access_token")
        if discovery.userinfo_endpoint is None or not isinstance(access_token, str):
            return None
        headers = {"Authorization": f"Bearer {access_token}"}
        info = await self._get_json(discovery.userinfo_endpoint, "userinfo endpoint", headers)
        if info.get("sub") != subject:
            raise IdTokenRefused("the userinfo endpoint answered about another subject")
        return info


def parse_discovery(document: dict[str, Any], issuer: str) -> Discovery:
    """The endpoints and choices single sign-on needs; the document must be the configured
    issuer's own (OpenID Connect Discovery §4.3)."""
    named = document.get("issuer")
    if not isinstance(named, str) or named.rstrip("/") != issuer:
        raise IssuerUnavailable(
            f"the discovery document names issuer {shorten(named)!r}, not {issuer!r}"
        )
    scheme = urlsplit(issuer).scheme
    userinfo = document.get("userinfo_endpoint")
    methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    method = next((m for m in AUTH_METHODS if m in methods), None)
    if method is None:
        raise IssuerUnavailable(
            "the issuer supports neither client_secret_basic nor client_secret_post"
        )
    advertised = document.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = tuple(a for a in SIGNING_ALGORITHMS if a in advertised)
    if not algorithms:
        raise IssuerUnavailable("the issuer signs ID tokens with no algorithm Heliograph accepts")
    return Discovery(
        issuer=named.rstrip("/"),
        authorization_endpoint=_endpoint(document, "authorization_endpoint", scheme),
        token_endpoint=_endpoint(document, "token_endpoint", scheme),
        jwks_uri=_endpoint(document, "jwks_uri", scheme),
        userinfo_endpoint=_endpoint(document, "userinfo_endpoint", scheme) if userinfo else None,
        token_auth_method=method,
        algorithms=algorithms,
    )


def _endpoint(document: dict[str, Any], name: str, issuer_scheme: str) -> str:
    """An endpoint URL: HTTPS (plain HTTP only when the issuer itself is, as in local tests)."""
    url = document.get(name)
    parts = urlsplit(url) if isinstance(url, str) else None
    allowed = {"https", issuer_scheme}
    if parts is None or parts.scheme not in allowed or not parts.hostname or parts.username:
        raise IssuerUnavailable(f"the discovery document has no usable {name}")
    return str(url)


def parse_keys(document: dict[str, Any]) -> KeySet:
    """The issuer's signing keys; keys for encryption or of kinds joserfc cannot read are
    skipped, so one odd key does not stop every sign-in."""
    keys = document.get("keys")
    if not isinstance(keys, list):
        raise IssuerUnavailable("the identity provider's keys are not a JWK set")
    usable = []
    for key in keys:
        if not isinstance(key, dict) or key.get("use", "sig") != "sig":
            continue
        try:
            usable.append(KeySet.import_key_set({"keys": [key]}).keys[0])
        except (JoseError, ValueError, TypeError, KeyError):
            continue
    if not usable:
        raise IssuerUnavailable("the identity provider publishes no signing key Heliograph reads")
    return KeySet(usable)
