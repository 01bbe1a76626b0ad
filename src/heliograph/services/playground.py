"""The prompt playground's backend: one prompt version run through this Heliograph's own gateway
(a real HTTP call to `/openai/v1/chat/completions` naming the version and the inputs), so it is
compiled, forwarded and logged like any request, and its answer relayed as it streams.

The gateway is called with the organization's playground key: HMAC-SHA256 of
`playground:<organization id>` under the vault's secret key, in the usual key format, so the API
recomputes it instead of storing it. Its hash row (`helicone_api_keys`, name "Playground",
permission `w`) is created on first use with an audit line, and created again on the next use
after an admin revokes it. The provider key sent is the organization's OpenAI key from the vault,
else the operator's `OPENAI_API_KEY`, else none."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from heliograph.appdb.models import ApiKey, ProviderKey
from heliograph.domain.errors import InvalidInput
from heliograph.domain.keys import KEY_PREFIX, display_prefix, hash_key
from heliograph.services.audit import Actor, AuditLog
from heliograph.services.prompts import PromptNotFound, PromptService
from heliograph.services.vault import Sealed, Vault, key_from_text
from heliograph.settings import Settings

log = logging.getLogger("heliograph.playground")
KEY_NAME = "Playground"
KEY_PERMISSIONS = "w"  # enough to log through the gateway, nothing to read with
CHAT_PATH = "/openai/v1/chat/completions"
MAX_ERROR_BYTES = 64 * 1024  # of an error answer, read to say what went wrong
CONNECT_TIMEOUT_S = 10.0
WILDCARD_HOSTS = {"", "0.0.0.0", "::"}  # listening everywhere: reached on loopback


class GatewayUnreachable(InvalidInput):
    status = 502
    code = "gateway_unreachable"


@dataclass(frozen=True, slots=True)
class PlaygroundRun:
    """What the playground asks: a version, its inputs, and the caller's own additions."""

    version_id: str
    inputs: Mapping[str, Any]
    messages: list[dict[str, Any]] | None = None
    model: str | None = None
    stream: bool = True
    temperature: float | None = None
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Prepared:
    """The call to send to the gateway (its headers hold two secrets: never printed)."""

    url: str
    headers: dict[str, str] = field(repr=False)
    body: bytes = field(repr=False)


@dataclass
class Relay:
    """The gateway's answer: streamed through when it succeeded, else `error` says why (and
    the response is already closed)."""

    status: int
    headers: dict[str, str]
    content_type: str
    error: str | None
    _response: aiohttp.ClientResponse
    _session: aiohttp.ClientSession

    async def chunks(self) -> AsyncIterator[bytes]:
        """Each chunk as the gateway sends it; closes the call however the relay ends."""
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        finally:
            await self.close()

    async def close(self) -> None:
        self._response.close()
        await self._session.close()


class Playground:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        prompts: PromptService,
        vault: Vault,
        audit: AuditLog,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._prompts = prompts
        self._vault = vault
        self._audit = audit

    def prepare(self, organization_id: str, run: PlaygroundRun, actor: Actor) -> Prepared:
        """On a worker thread: the version (another organization's is not found), the
        playground key (its row made if missing) and the provider key, as one gateway call."""
        version = self._prompts.version(organization_id, run.version_id)
        if version is None:
            raise PromptNotFound(f"no prompt version {run.version_id}")
        headers = {
            "Content-Type": "application/json",
            "Helicone-Auth": f"Bearer {self.ensure_key(organization_id, actor)}",
        }
        secret = self.provider_secret(organization_id)
        if secret:
            headers["Authorization"] = f"Bearer {secret}"
        body: dict[str, Any] = {
            "prompt_id": version.prompt_id,
            "version_id": version.id,
            "inputs": dict(run.inputs),
            "stream": run.stream,
        }
        extras = {
            "messages": run.messages,
            "model": run.model,
            "temperature": run.temperature,
            "max_tokens": run.max_tokens,
        }
        body.update({name: value for name, value in extras.items() if value is not None})
        return Prepared(gateway_url(self._settings) + CHAT_PATH, headers, orjson.dumps(body))

    async def send(self, prepared: Prepared) -> Relay:
        """Post to the gateway and return once its answer's head has arrived."""
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=CONNECT_TIMEOUT_S,
            sock_read=self._settings.upstream_timeout_s,
        )
        # Decompressed here (a provider may gzip its JSON): relayed plain, as it arrives.
        session = aiohttp.ClientSession(timeout=timeout)
        try:
            response = await session.post(
                prepared.url,
                data=prepared.body,
                headers=prepared.headers,
                allow_redirects=False,
            )
        except (aiohttp.ClientError, TimeoutError) as error:
            await session.close()
            log.warning("the playground cannot reach the gateway at %s: %s", prepared.url, error)
            raise GatewayUnreachable("the gateway cannot be reached; try again") from error
        headers = {"Helicone-Id": response.headers.get("Helicone-Id", "")}
        content_type = response.headers.get("Content-Type", "application/json")
        relay = Relay(response.status, headers, content_type, None, response, session)
        if response.status >= 300:
            try:
                relay.status, relay.error = await _refusal(response)
            finally:
                await relay.close()
        return relay

    def ensure_key(self, organization_id: str, actor: Actor) -> str:
        """The organization's playground key; its row is added (or restored, when revoked)."""
        key = playground_key(self._master_key(), organization_id)
        key_hash = hash_key(key)
        try:
            with self._sessions.begin() as session:
                statement = select(ApiKey).where(ApiKey.api_key_hash == key_hash)
                row = session.scalars(statement).first()
                if row is not None and row.organization_id != organization_id:
                    raise RuntimeError("a playground key's hash belongs to another organization")
                if row is not None and row.revoked_at is None:
                    return key
                self._keep_key_row(session, row, organization_id, key, actor)
        except IntegrityError:
            pass  # a concurrent first use added the same row
        return key

    def _keep_key_row(
        self, session: Session, row: ApiKey | None, organization_id: str, key: str, actor: Actor
    ) -> None:
        now = datetime.now(UTC)
        if row is None:
            row = ApiKey(
                id=str(uuid.uuid4()),
                organization_id=organization_id,
                api_key_hash=hash_key(key),
                api_key_name=KEY_NAME,
                key_prefix=display_prefix(key),
                key_permissions=KEY_PERMISSIONS,
            )
            session.add(row)
        row.created_at, row.revoked_at = now, None
        details = {"name": KEY_NAME, "key_permissions": KEY_PERMISSIONS, "for": "playground"}
        target = ("api_key", row.id)
        self._audit.record(actor, "api_key.create", organization_id, target, details, session)

    def provider_secret(self, organization_id: str) -> str | None:
        """The organization's newest OpenAI key, else the operator's `OPENAI_API_KEY`."""
        statement = (
            select(ProviderKey)
            .where(
                ProviderKey.organization_id == organization_id,
                ProviderKey.provider_name == "OPENAI",
                ProviderKey.deleted_at.is_(None),
            )
            .order_by(ProviderKey.created_at.desc())
            .limit(1)
        )
        with self._sessions() as session:
            row = session.scalars(statement).first()
            if row is not None:
                sealed = Sealed(row.ciphertext, row.nonce, row.secret_key_id)
                return self._vault.open(sealed, organization_id, row.id)
        return os.environ.get("OPENAI_API_KEY") or None

    def _master_key(self) -> bytes:
        """The vault's secret key, as it is now (a rotation changes every playground key)."""
        settings = self._settings
        return key_from_text(settings.secret_key or self._vault.key_file.read_text())


def playground_key(master_key: bytes, organization_id: str) -> str:
    """`sk-helicone-` and four groups of seven base32 characters, like any key, derived from
    the master key and the organization."""
    digest = hmac.new(master_key, f"playground:{organization_id}".encode(), hashlib.sha256)
    text = base64.b32encode(digest.digest()).decode().lower()[:28]
    return KEY_PREFIX + "-".join(text[start : start + 7] for start in range(0, 28, 7))


def gateway_url(settings: Settings) -> str:
    """Where this Heliograph's gateway listens, as the API process reaches it."""
    host = settings.host
    if host in WILDCARD_HOSTS:
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.gateway_port}"


async def _refusal(response: aiohttp.ClientResponse) -> tuple[int, str]:
    """The status and message to answer for a gateway or provider error. The gateway's own
    refusals keep their status (an unknown prompt, a missing input: 400), but a refused
    playground key is not the caller's 401; a provider's error is a 502 quoting it."""
    raw = await response.content.read(MAX_ERROR_BYTES)
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        document = None
    error = document.get("error") if isinstance(document, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    text = str(message)[:1000] if message else raw[:200].decode(errors="replace")
    ours = isinstance(error, dict) and error.get("type") == "heliograph_error"
    if ours and response.status not in (401, 403):
        return response.status, text
    if ours:
        return 502, f"the gateway refused the playground's key: {text}"
    return 502, f"the provider answered {response.status}: {text}"
