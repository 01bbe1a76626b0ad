"""A fake Google OAuth token endpoint, `POST /token`: service-account keys made for it
(`service_account`, `write_service_account`), the JWT-bearer exchange checked as Google checks
it (the assertion RS256-signed by the account's own key, issued by its e-mail, addressed to
Google's endpoint, current, with a scope), and the access tokens it issued, which `vertex_api`
accepts.

State is module-level on purpose (`ACCOUNTS`, `ISSUED`): keys and tokens are random, so tests
sharing a process never meet each other's, and the token endpoint and the fake Vertex find the
same state whichever app they are mounted on. Each `FakeAccount` counts its own exchanges.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import GuestProtocol, RSAKey

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# google-auth addresses every assertion to Google's token endpoint, wherever it posts it.
AUDIENCE = "https://oauth2.googleapis.com/token"
MAX_LIFETIME_S = 3600  # Google refuses an assertion valid for longer


@dataclass
class FakeAccount:
    """One service account: its key document (`info`, `json`) and what the endpoint did."""

    info: dict[str, Any]
    public_key: RSAKey
    expires_in: int = 3600
    refuse: bool = False  # answer 400 invalid_grant, as for a deleted key
    exchanges: int = 0
    scopes: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)

    @property
    def json(self) -> str:
        return json.dumps(self.info)


ACCOUNTS: dict[str, FakeAccount] = {}  # by private_key_id (the assertion's `kid`)
ISSUED: set[str] = set()  # every access token handed out; `vertex_api` accepts these


def service_account(
    token_uri: str, *, project: str = "fake-project", expires_in: int = 3600, refuse: bool = False
) -> FakeAccount:
    """A new service account with a fresh RSA key, whose key document names `token_uri`."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    key_id = secrets.token_hex(20)
    name = f"sa-{key_id[:8]}"
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": key_id,
        "private_key": pem,
        "client_email": f"{name}@{project}.iam.gserviceaccount.com",
        "client_id": str(secrets.randbelow(10**20)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "universe_domain": "googleapis.com",
    }
    account = FakeAccount(info, RSAKey.import_key(private.public_key()), expires_in, refuse)
    ACCOUNTS[key_id] = account
    return account


def write_service_account(path: Path, token_uri: str, **options: Any) -> FakeAccount:
    """`service_account`, its key document written to `path` (a GOOGLE_APPLICATION_CREDENTIALS
    file)."""
    account = service_account(token_uri, **options)
    path.write_text(account.json)
    return account


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/token", token)


async def token(request: web.Request) -> web.Response:
    form = await request.post()
    if form.get("grant_type") != JWT_BEARER:
        return _refusal("unsupported_grant_type", "Invalid grant_type.")
    assertion = form.get("assertion")
    if not isinstance(assertion, str):
        return _refusal("invalid_request", "Missing required parameter: assertion")
    found: list[FakeAccount] = []

    def key_of(guest: GuestProtocol) -> RSAKey:
        account = ACCOUNTS.get(str(guest.headers().get("kid")))
        if account is None:
            raise JoseError("unknown key id")
        found.append(account)
        return account.public_key

    try:
        claims = jwt.decode(assertion, key_of, algorithms=["RS256"]).claims
    except (JoseError, ValueError):
        return _refusal("invalid_grant", "Invalid JWT Signature.")
    account = found[0]
    account.exchanges += 1
    problem = _claims_problem(claims, account)
    if problem:
        return _refusal("invalid_grant", problem)
    if account.refuse:
        return _refusal("invalid_grant", "Invalid grant: account not found")
    access_token = f"ya29.fake-{secrets.token_urlsafe(24)}"
    ISSUED.add(access_token)
    account.tokens.append(access_token)
    account.scopes = str(claims["scope"]).split()
    answer = {"access_token": access_token, "expires_in": account.expires_in}
    return web.json_response({**answer, "token_type": "Bearer"})


def _claims_problem(claims: dict[str, Any], account: FakeAccount) -> str | None:
    now = time.time()
    issued, expires = claims.get("iat"), claims.get("exp")
    if claims.get("iss") != account.info["client_email"]:
        return "Invalid JWT: the issuer is not the key's service account."
    if claims.get("aud") != AUDIENCE:
        return "Invalid JWT: the audience is not Google's token endpoint."
    if not isinstance(issued, int) or not isinstance(expires, int):
        return "Invalid JWT: iat and exp are required."
    if issued > now + 60 or expires < now or expires - issued > MAX_LIFETIME_S:
        return "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe."
    if not isinstance(claims.get("scope"), str) or not claims["scope"]:
        return "Invalid JWT: no scope."
    return None


def _refusal(error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=400)
