"""Single sign-on end to end: a browser (aiohttp, following no redirect by itself) signs in to
Heliograph through a real OpenID Connect provider process (`oidc_provider.py`), on SQLite and
PostgreSQL; then the refusals: a used or unknown state, another browser's callback, an unverified
e-mail, an ID token for another flow, audience or key, an unreachable issuer, a foreign `next`."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import httpx
import pytest
from aiohttp import web
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from conftest import Fake, Heliograph, heliograph_settings, start_heliograph
from heliograph.appdb.engine import session_factory
from heliograph.appdb.models import AuditEntry, LoginFlow, UserIdentity
from heliograph.services.sso import (
    IdTokenRefused,
    IssuerUnavailable,
    SsoConfig,
    SsoService,
    flow_id,
    local_path,
)
from oidc_provider import OidcProvider, run_provider

CLIENT_ID = "heliograph"
PUBLIC = "http://heliograph.test"  # the public URL, as behind a reverse proxy
CALLBACK = f"{PUBLIC}/v1/auth/sso/callback"


def new_subject() -> str:
    return f"user-{uuid.uuid4().hex[:10]}"


@dataclass
class Browser:
    """One browser: a cookie jar, and `PUBLIC` resolved to the API as a reverse proxy would."""

    http: aiohttp.ClientSession
    api: str

    def resolve(self, url: str) -> str:
        return self.api + url.removeprefix(PUBLIC) if url.startswith(PUBLIC) else url

    async def get(self, url: str) -> tuple[int, str, Any]:
        """Status, `Location` and the JSON body (when there is one) of one GET."""
        async with self.http.get(self.resolve(url), allow_redirects=False) as response:
            body = await response.json() if response.content_type == "application/json" else None
            return response.status, response.headers.get("Location", ""), body

    async def start(self, next_path: str = "/") -> str:
        """The provider's authorize URL Heliograph sends the browser to."""
        query = urlencode({"next": next_path})
        status, location, body = await self.get(f"{self.api}/v1/auth/sso/login?{query}")
        assert status == 302, body
        return location

    async def authorize(self, authorize_url: str, sub: str) -> str:
        """Pick `sub` on the provider's page; the callback URL it redirects to."""
        async with self.http.post(
            authorize_url, data={"sub": sub}, allow_redirects=False
        ) as response:
            assert response.status == 302, await response.text()
            return response.headers["Location"]

    async def sign_in(self, sub: str, next_path: str = "/") -> tuple[int, str, Any]:
        callback = await self.authorize(await self.start(next_path), sub)
        return await self.get(callback)

    def cookie(self, name: str) -> str | None:
        for cookie in self.http.cookie_jar:
            if cookie.key == name:
                return cookie.value
        return None

    async def me(self) -> tuple[int, Any]:
        async with self.http.get(f"{self.api}/v1/auth/me") as response:
            return response.status, await response.json()


@contextlib.asynccontextmanager
async def browser(api: str) -> AsyncIterator[Browser]:
    # unsafe=True: keep cookies from an IP-address host, as a browser does.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield Browser(http, api)


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def sso_settings(
    tmp_path: Path, analytics_dir: Path, fake: Fake, issuer: str, **overrides: Any
) -> Any:
    return heliograph_settings(
        tmp_path,
        analytics_dir,
        fake,
        oidc_issuer=issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret="client-secret",
        public_url=PUBLIC,
        **overrides,
    )


@pytest.fixture(scope="module")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    """One provider process for the module; each test gives its own subjects their claims."""
    with run_provider(tmp_path_factory.mktemp("oidc")) as provider:
        yield provider


@pytest.fixture
async def sso(
    tmp_path: Path,
    analytics_dir: Path,
    fake: Fake,
    database_url: str,
    oidc_provider: OidcProvider,
) -> AsyncIterator[Heliograph]:
    """Heliograph on each app DB, signing people in through the test provider."""
    settings = sso_settings(
        tmp_path, analytics_dir, fake, oidc_provider.issuer, database_url=database_url
    )
    instance = await start_heliograph(settings)
    yield instance
    await instance.running.stop()


def audit_lines(heliograph: Heliograph, action: str) -> list[AuditEntry]:
    with session_factory(heliograph.running.services.engine)() as db:
        return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def verified_user(provider: OidcProvider, domain: str = "example.com", **claims: Any) -> str:
    sub = new_subject()
    provider.set_user(sub, email=f"{sub}@{domain}", email_verified=True, **claims)
    return sub


# Signing in


async def test_sign_in_through_the_provider(sso: Heliograph, oidc_provider: OidcProvider) -> None:
    sub = verified_user(oidc_provider, name="Ada Lovelace")
    sessions = session_factory(sso.running.services.engine)
    async with browser(sso.api) as ada:
        authorize_url = await ada.start("/dashboard?tab=keys")
        assert authorize_url.startswith(f"{oidc_provider.issuer}/oauth2/authorize?")
        query = query_of(authorize_url)
        assert query["response_type"] == "code"
        assert query["client_id"] == CLIENT_ID
        assert query["redirect_uri"] == CALLBACK
        assert query["scope"] == "openid email profile"
        assert query["code_challenge_method"] == "S256"
        assert query["nonce"]
        assert query["state"]
        assert ada.cookie("heliograph_sso_state") == query["state"]
        with sessions() as db:  # kept by the state's hash, with the PKCE verifier behind it
            flow = db.get(LoginFlow, flow_id(query["state"]))
            assert flow is not None
            assert flow.redirect_to == "/dashboard?tab=keys"
            assert flow.nonce == query["nonce"]
            digest = hashlib.sha256(flow.code_verifier.encode()).digest()
            assert query["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

        callback = await ada.authorize(authorize_url, sub)
        assert callback.startswith(f"{CALLBACK}?")
        status, location, body = await ada.get(callback)
        assert (status, location) == (302, "/dashboard?tab=keys"), body
        assert ada.cookie("heliograph_session")
        assert ada.cookie("heliograph_csrf")

        status, me = await ada.me()
        assert status == 200, me
        assert me["data"]["email"] == f"{sub}@example.com"
        assert me["data"]["name"] == "Ada Lovelace"
        assert me["data"]["has_password"] is False
        # The first person owns an organization of their own (never the one `init` made).
        [organization] = me["data"]["organizations"]
        assert organization["name"] == f"{sub}@example.com's organization"
        assert organization["role"] == "owner"
        assert organization["id"] != sso.organization_id
    with sessions() as db:
        assert db.get(LoginFlow, flow_id(query["state"])) is None  # taken
        identity = db.get(UserIdentity, (oidc_provider.issuer, sub))
        assert identity is not None
        assert identity.user_id == me["data"]["user_id"]
    [line] = audit_lines(sso, "login.sso")
    assert line.actor_user_id == me["data"]["user_id"]
    assert line.address == "127.0.0.1"

    async with browser(sso.api) as again:  # the linked identity signs the same person in
        status, location, _ = await again.sign_in(sub)
        assert (status, location) == (302, "/")
        status, second = await again.me()
        assert status == 200
        assert second["data"]["user_id"] == me["data"]["user_id"]


async def test_next_must_stay_on_this_site(sso: Heliograph, oidc_provider: OidcProvider) -> None:
    sub = verified_user(oidc_provider)
    async with browser(sso.api) as person:
        status, location, body = await person.sign_in(sub, next_path="//evil.example/x")
        assert (status, location) == (302, "/"), body
        status, location, body = await person.sign_in(sub, next_path="https://evil.example")
        assert (status, location) == (302, "/"), body


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ("/", "/"),
        ("/requests?page=2#top", "/requests?page=2#top"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/path\\..\\", "/"),
        ("https://evil.example/", "/"),
        ("evil.example", "/"),
        ("", "/"),
        ("/\t/evil.example", "/"),  # browsers drop tabs and newlines: this is //evil.example
        ("/\n/evil.example", "/"),
        ("/" + "a" * 600, "/"),
    ],
)
def test_local_path(candidate: str, expected: str) -> None:
    assert local_path(candidate) == expected


# Refusals


async def test_used_unknown_expired_and_foreign_states_are_refused(
    sso: Heliograph, oidc_provider: OidcProvider
) -> None:
    sub = verified_user(oidc_provider)
    sessions = session_factory(sso.running.services.engine)
    async with browser(sso.api) as person:
        callback = await person.authorize(await person.start(), sub)
        status, _, _ = await person.get(callback)
        assert status == 302
        assert person.cookie("heliograph_sso_state") in (None, "")  # cleared on success
        person.http.cookie_jar.update_cookies({"heliograph_sso_state": query_of(callback)["state"]})
        status, _, body = await person.get(callback)  # the same callback again
        assert status == 400
        assert "unknown, already used or expired" in body["error"]

        made_up = "made-up-state"
        person.http.cookie_jar.update_cookies({"heliograph_sso_state": made_up})
        status, _, body = await person.get(f"{CALLBACK}?code=abc&state={made_up}")
        assert status == 400
        assert "unknown, already used or expired" in body["error"]

        callback = await person.authorize(await person.start(), sub)
        with sessions.begin() as db:  # ten minutes later
            flow = db.get(LoginFlow, flow_id(query_of(callback)["state"]))
            assert flow is not None
            flow.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        status, _, body = await person.get(callback)
        assert status == 400
        assert "expired" in body["error"]

        # Two callbacks racing with one state: the flow is taken once.
        callback = await person.authorize(await person.start(), sub)
        racing = await asyncio.gather(person.get(callback), person.get(callback))
        assert sorted(status for status, _, _ in racing) == [302, 400]

        for incomplete in (f"{CALLBACK}?code=abc", f"{CALLBACK}?state=abc", CALLBACK):
            status, _, body = await person.get(incomplete)
            assert status == 400
            assert "code and state" in body["error"]

        # A callback from another browser (login CSRF: an attacker's code in a victim's
        # browser) is refused, and the flow it named cannot be finished afterwards.
        callback = await person.authorize(await person.start(), sub)
        async with browser(sso.api) as victim:
            status, _, body = await victim.get(callback)
            assert status == 400
            assert "another browser" in body["error"]
            assert victim.cookie("heliograph_session") is None
        status, _, body = await person.get(callback)
        assert status == 400


async def test_bad_input_is_a_clear_400(sso: Heliograph, oidc_provider: OidcProvider) -> None:
    async with browser(sso.api) as person:
        status, _, body = await person.get(f"{sso.api}/v1/auth/sso/login?next=/{'a' * 2001}")
        assert status == 400
        assert "next" in body["error"]
        status, _, body = await person.get(f"{CALLBACK}?code=abc&state={'s' * 2001}")
        assert status == 400
        assert "state" in body["error"]
        # A code the provider never issued, with a real flow: the provider's refusal, as a 400.
        state = query_of(await person.start())["state"]
        status, _, body = await person.get(f"{CALLBACK}?code=forged&state={state}")
        assert status == 400
        assert body["error"].startswith("the identity provider refused the sign-in: invalid_grant")
        assert person.cookie("heliograph_session") is None


async def test_unverified_email_is_refused(sso: Heliograph, oidc_provider: OidcProvider) -> None:
    sub = new_subject()
    oidc_provider.set_user(sub, email=f"{sub}@example.com", email_verified=False)
    async with browser(sso.api) as person:
        status, _, body = await person.sign_in(sub)
        assert status == 403
        assert "not verified" in body["error"]
        assert person.cookie("heliograph_session") is None
        assert (await person.me())[0] == 401
    # A subject the provider knows nothing of gets only an e-mail claim: Heliograph asks the
    # userinfo endpoint for `email_verified`, finds none, and refuses as well.
    unknown = f"{new_subject()}@example.com"
    async with browser(sso.api) as person:
        status, _, body = await person.sign_in(unknown)
        assert status == 403
        assert "not verified" in body["error"]
    refused = audit_lines(sso, "login.sso_refused")
    assert {line.target_id for line in refused} == {f"{sub}@example.com", unknown}
    assert audit_lines(sso, "login.sso") == []


async def test_an_id_token_for_another_flow_is_refused(
    sso: Heliograph, oidc_provider: OidcProvider
) -> None:
    """A code obtained for one flow, replayed with another flow's state: the ID token carries
    the first flow's nonce, so it is refused (the PKCE verifier would not match either)."""
    sub = verified_user(oidc_provider)
    async with browser(sso.api) as person:
        first = await person.start()
        second = await person.start()  # the state cookie now names the second flow
        code = query_of(await person.authorize(first, sub))["code"]
        state = query_of(second)["state"]
        status, _, body = await person.get(f"{CALLBACK}?code={code}&state={state}")
        assert status == 403, body
        assert "nonce" in body["error"]
        assert person.cookie("heliograph_session") is None
    [line] = audit_lines(sso, "login.sso_refused")
    assert "nonce" in json.loads(line.details)["reason"]


async def test_the_providers_refusal_is_a_400(sso: Heliograph, oidc_provider: OidcProvider) -> None:
    async with browser(sso.api) as person:
        authorize_url = await person.start()
        async with person.http.post(
            authorize_url, data={"action": "deny"}, allow_redirects=False
        ) as response:
            callback = response.headers["Location"]
        assert callback.startswith(f"{CALLBACK}?")
        assert "error=access_denied" in callback
        status, _, body = await person.get(callback)
        assert status == 400
        assert "access_denied" in body["error"]

        rambling = "line one\nline two " + "x" * 1500
        query = urlencode({"error": "server_error", "error_description": rambling})
        status, _, body = await person.get(f"{CALLBACK}?{query}")
        assert status == 400
        assert body["error"].startswith("the identity provider refused")
        assert len(body["error"]) <= 200
        assert "\n" not in body["error"]


async def test_domain_members_join_with_the_default_role(
    tmp_path: Path,
    analytics_dir: Path,
    fake: Fake,
    database_url: str,
    oidc_provider: OidcProvider,
) -> None:
    settings = sso_settings(
        tmp_path,
        analytics_dir,
        fake,
        oidc_provider.issuer,
        database_url=database_url,
        oidc_domain_organization="corp.example=test",
        oidc_default_role="viewer",
    )
    heliograph = await start_heliograph(settings)
    try:
        async with browser(heliograph.api) as colleague:
            status, _, body = await colleague.sign_in(verified_user(oidc_provider, "corp.example"))
            assert status == 302, body
            status, me = await colleague.me()
            joined = [{"id": heliograph.organization_id, "name": "test", "role": "viewer"}]
            assert status == 200
            assert me["data"]["organizations"] == joined
        # Someone from another domain, with people already here and no invitation: refused.
        async with browser(heliograph.api) as stranger:
            status, _, body = await stranger.sign_in(verified_user(oidc_provider, "else.example"))
            assert status == 403
            assert "invitation" in body["error"]
            assert stranger.cookie("heliograph_session") is None
    finally:
        await heliograph.running.stop()


async def test_open_signup_gives_a_new_person_an_organization(
    tmp_path: Path,
    analytics_dir: Path,
    fake: Fake,
    database_url: str,
    oidc_provider: OidcProvider,
) -> None:
    settings = sso_settings(
        tmp_path,
        analytics_dir,
        fake,
        oidc_provider.issuer,
        database_url=database_url,
        signup="open",
    )
    heliograph = await start_heliograph(settings)
    try:
        roles = []
        for _ in range(2):
            async with browser(heliograph.api) as person:
                status, _, body = await person.sign_in(verified_user(oidc_provider))
                assert status == 302, body
                status, me = await person.me()
                assert status == 200
                [membership] = me["data"]["organizations"]
                roles.append((membership["id"] == heliograph.organization_id, membership["role"]))
        # Each gets one of their own; the one `init` made is never handed out.
        assert roles == [(False, "owner"), (False, "owner")]
    finally:
        await heliograph.running.stop()


async def test_sso_off(heliograph: Heliograph) -> None:
    async with browser(heliograph.api) as person:
        status, _, body = await person.get(f"{heliograph.api}/v1/auth/sso")
        assert status == 200
        assert body["data"] == {"enabled": False, "issuer": None, "login_url": None}
        for path in ("/v1/auth/sso/login", "/v1/auth/sso/callback?code=a&state=b"):
            status, _, body = await person.get(heliograph.api + path)
            assert status == 404
            assert "not configured" in body["error"]


async def test_status_and_an_unreachable_issuer(
    tmp_path: Path, analytics_dir: Path, fake: Fake
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        issuer = f"http://127.0.0.1:{probe.getsockname()[1]}"
    heliograph = await start_heliograph(sso_settings(tmp_path, analytics_dir, fake, issuer))
    try:
        async with browser(heliograph.api) as person:
            status, _, body = await person.get(f"{heliograph.api}/v1/auth/sso")
            login_url = f"{PUBLIC}/v1/auth/sso/login"
            assert body["data"] == {"enabled": True, "issuer": issuer, "login_url": login_url}
            status, _, body = await person.get(f"{heliograph.api}/v1/auth/sso/login")
            assert status == 502, body
            assert "could not reach" in body["error"]
    finally:
        await heliograph.running.stop()


# The ID token's checks, on tokens the provider really issued (and forgeries of them)


def service(issuer: str, timeout_s: float = 10.0) -> SsoService:
    config = SsoConfig(issuer, CLIENT_ID, "client-secret", CALLBACK)
    return SsoService(config, sessionmaker(), timeout_s)  # these checks never touch the DB


async def issued_id_token(provider: OidcProvider, client_id: str, sub: str, nonce: str) -> str:
    """An ID token the provider issues to `client_id`, by the code flow done by hand."""
    redirect_uri = "http://client.test/callback"
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid email profile",
        "state": "state",
        "nonce": nonce,
    }
    async with httpx.AsyncClient(timeout=10) as http:
        url = f"{provider.issuer}/oauth2/authorize"
        authorized = await http.post(url, params=params, data={"sub": sub})
        code = query_of(authorized.headers["Location"])["code"]
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        token = await http.post(
            f"{provider.issuer}/oauth2/token", data=form, auth=(client_id, "any")
        )
    id_token: str = token.json()["id_token"]
    return id_token


def with_claims(id_token: str, **changes: Any) -> str:
    """The same token with changed claims and the original signature: a forgery."""
    header, payload, signature = id_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


async def test_id_token_checks(oidc_provider: OidcProvider) -> None:
    sub = verified_user(oidc_provider)
    sso = service(oidc_provider.issuer)
    genuine = await issued_id_token(oidc_provider, CLIENT_ID, sub, "nonce-1")
    claims = await sso.verify_id_token(genuine, "nonce-1")
    assert claims["sub"] == sub
    assert claims["email"] == f"{sub}@example.com"

    other_client = await issued_id_token(oidc_provider, "someone-else", sub, "nonce-1")
    key = RSAKey.generate_key(2048, parameters={"kid": "rogue"})
    now = int(datetime.now(UTC).timestamp())
    rogue_claims = {"iss": oidc_provider.issuer, "aud": CLIENT_ID, "sub": sub, "nonce": "nonce-1"}
    rogue = jwt.encode({"alg": "RS256", "kid": "rogue"}, {**rogue_claims, "exp": now + 300}, key)
    none_header = _b64(json.dumps({"alg": "none"}).encode())
    unsigned = f"{none_header}.{genuine.split('.')[1]}."
    refused = {
        "wrong nonce": (genuine, "nonce-2", "nonce"),
        "another client's token": (other_client, "nonce-1", "aud"),
        "forged e-mail": (with_claims(genuine, email="boss@example.com"), "nonce-1", "signature"),
        "forged audience": (with_claims(other_client, aud=[CLIENT_ID]), "nonce-1", "signature"),
        "a key the issuer never published": (rogue, "nonce-1", "kid"),
        "no signature": (unsigned, "nonce-1", "does not verify"),
        "not a token": ("not-a-token", "nonce-1", "does not verify"),
    }
    for case, (token, nonce, reason) in refused.items():
        with pytest.raises(IdTokenRefused, match=reason) as refusal:
            await sso.verify_id_token(token, nonce)
        assert refusal.value.status == 403, case


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class KeyedIssuer:
    """An issuer of the test's own on loopback (discovery and keys only), signing ID tokens with
    keys the test rotates, and counting how often its keys are fetched."""

    url: str
    keys: list[RSAKey]
    jwks_fetches: int = 0

    def sign(self, key: RSAKey | OctKey, alg: str = "RS256", **changes: Any) -> str:
        now = int(datetime.now(UTC).timestamp())
        claims: dict[str, Any] = {"iss": self.url, "aud": CLIENT_ID, "sub": "someone"}
        claims |= {"nonce": NONCE, "exp": now + 300, "iat": now, "email": "someone@example.com"}
        claims |= changes
        present = {name: value for name, value in claims.items() if value is not None}
        return jwt.encode({"alg": alg, "kid": key.kid or "none"}, present, key)


NONCE = "the-nonce"


@contextlib.asynccontextmanager
async def keyed_issuer() -> AsyncIterator[KeyedIssuer]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    issuer = KeyedIssuer(f"http://127.0.0.1:{sock.getsockname()[1]}", [])

    async def discovery(_request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": issuer.url,
                "authorization_endpoint": f"{issuer.url}/authorize",
                "token_endpoint": f"{issuer.url}/token",
                "jwks_uri": f"{issuer.url}/jwks",
            }
        )

    async def jwks(_request: web.Request) -> web.Response:
        issuer.jwks_fetches += 1
        return web.json_response({"keys": [key.as_dict(private=False) for key in issuer.keys]})

    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", discovery)
    app.router.add_get("/jwks", jwks)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        yield issuer
    finally:
        await runner.cleanup()


async def test_keys_are_fetched_again_once_for_a_new_key_id() -> None:
    old = RSAKey.generate_key(2048, parameters={"kid": "old"})
    new = RSAKey.generate_key(2048, parameters={"kid": "new"})
    rogue = RSAKey.generate_key(2048, parameters={"kid": "rogue"})
    async with keyed_issuer() as issuer:
        issuer.keys = [old]
        sso = service(issuer.url)
        for _ in range(2):
            assert (await sso.verify_id_token(issuer.sign(old), NONCE))["sub"] == "someone"
        assert issuer.jwks_fetches == 1  # kept
        issuer.keys = [new]  # the issuer rotates its key
        assert (await sso.verify_id_token(issuer.sign(new), NONCE))["sub"] == "someone"
        assert issuer.jwks_fetches == 2
        with pytest.raises(IdTokenRefused, match="kid"):
            await sso.verify_id_token(issuer.sign(rogue), NONCE)
        assert issuer.jwks_fetches == 3  # once per unknown key id, not in a loop


async def test_claims_an_id_token_must_carry() -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    now = int(datetime.now(UTC).timestamp())
    async with keyed_issuer() as issuer:
        issuer.keys = [key]
        sso = service(issuer.url)
        late_but_within_leeway = issuer.sign(key, exp=now - 30)
        assert (await sso.verify_id_token(late_but_within_leeway, NONCE))["sub"] == "someone"
        secret = OctKey.import_key("a-client-secret-long-enough-for-hs256!!")
        refused = {
            "expired": (issuer.sign(key, exp=now - 120), "expired"),
            "another issuer": (issuer.sign(key, iss="https://evil.example"), "iss"),
            "no audience": (issuer.sign(key, aud=None), "aud"),
            "two audiences, no azp": (issuer.sign(key, aud=[CLIENT_ID, "other"]), "azp"),
            "authorized for another": (issuer.sign(key, azp="other"), "azp"),
            "no subject": (issuer.sign(key, sub=None), "sub"),
            "no expiry": (issuer.sign(key, exp=None), "exp"),
            "not yet valid": (issuer.sign(key, nbf=now + 3600), "not yet valid"),
            "no nonce": (issuer.sign(key, nonce=None), "nonce"),
            "signed with the client secret": (issuer.sign(secret, alg="HS256"), "verify"),
        }
        for case, (token, reason) in refused.items():
            with pytest.raises(IdTokenRefused, match=reason) as refusal:
                await sso.verify_id_token(token, NONCE)
            assert refusal.value.status == 403, case


async def test_a_silent_issuer_times_out() -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(IssuerUnavailable, match=r"did not answer within 0\.3 s"):
            await service(f"http://127.0.0.1:{port}", timeout_s=0.3).discovery()
    finally:
        server.close()
        await server.wait_closed()


def test_a_discovery_document_for_another_issuer_is_refused() -> None:
    from heliograph.services.sso import parse_discovery

    document = {
        "issuer": "https://evil.example",
        "authorization_endpoint": "https://evil.example/authorize",
        "token_endpoint": "https://evil.example/token",
        "jwks_uri": "https://evil.example/jwks",
    }
    with pytest.raises(IssuerUnavailable, match="names issuer"):
        parse_discovery(document, "https://login.example")
    own = {**document, "issuer": "https://login.example"}
    assert parse_discovery(own, "https://login.example").algorithms == ("RS256",)
    for unsafe in (
        {"id_token_signing_alg_values_supported": ["none", "HS256"]},
        {"token_endpoint_auth_methods_supported": ["private_key_jwt"]},
        {"token_endpoint": "ftp://login.example/token"},
    ):
        with pytest.raises(IssuerUnavailable):
            parse_discovery({**own, **unsafe}, "https://login.example")
