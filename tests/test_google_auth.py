"""Vertex AI access tokens from service-account keys, exchanged for real (google-auth, RS256
assertions) with a fake Google token endpoint on loopback that checks each assertion's
signature against the account's public key."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from fake_provider import google_oauth
from fake_provider.google_oauth import ISSUED, service_account, write_service_account
from heliograph.domain.errors import InvalidInput
from heliograph.gateway.google_tokens import (
    FAILURE_HOLD_S,
    REFRESH_MARGIN_S,
    SCOPE,
    InvalidServiceAccount,
    TokenRefused,
    TokenUnavailable,
    VertexTokens,
    project_of,
)


@pytest.fixture
async def token_uri() -> AsyncIterator[str]:
    """The fake token endpoint's URL."""
    app = web.Application()
    google_oauth.add_routes(app.router)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/token"
    await runner.cleanup()


class Clock:
    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        import time

        return time.time() + self.ahead


async def test_a_burst_costs_one_exchange_and_the_token_is_cached(
    token_uri: str, tmp_path: Path
) -> None:
    path = tmp_path / "service-account.json"
    account = write_service_account(path, token_uri, project="proj-a")
    tokens = VertexTokens(token_uris={token_uri})
    info_json = path.read_text()
    got = await asyncio.wait_for(asyncio.gather(*(tokens.token(info_json) for _ in range(25))), 30)
    assert set(got) == {account.tokens[0]}
    assert account.exchanges == 1
    assert got[0] in ISSUED
    assert account.scopes == [SCOPE]
    assert await tokens.token(info_json) == got[0]
    assert account.exchanges == 1
    assert project_of(info_json) == "proj-a"


async def test_accounts_are_kept_apart(token_uri: str) -> None:
    first, second = service_account(token_uri), service_account(token_uri)
    tokens = VertexTokens(token_uris={token_uri})
    one, two = await asyncio.gather(tokens.token(first.json), tokens.token(second.json))
    assert one == first.tokens[0]
    assert two == second.tokens[0]
    assert one != two
    assert (first.exchanges, second.exchanges) == (1, 1)


async def test_refreshed_when_within_five_minutes_of_expiry(token_uri: str) -> None:
    clock = Clock()
    account = service_account(token_uri)
    tokens = VertexTokens(token_uris={token_uri}, clock=clock)
    first = await tokens.token(account.json)
    clock.ahead = 3600 - REFRESH_MARGIN_S - 100  # still over five minutes left
    assert await tokens.token(account.json) == first
    assert account.exchanges == 1
    clock.ahead = 3600 - REFRESH_MARGIN_S + 1
    second = await tokens.token(account.json)
    assert second != first
    assert second == account.tokens[1]
    assert account.exchanges == 2
    clock.ahead = 0
    assert await tokens.token(account.json) == second
    assert account.exchanges == 2


async def test_a_short_lived_token_is_refreshed_every_time(token_uri: str) -> None:
    account = service_account(token_uri, expires_in=120)  # under the five-minute margin
    tokens = VertexTokens(token_uris={token_uri})
    got = [await tokens.token(account.json) for _ in range(3)]
    assert got == account.tokens
    assert len(set(got)) == 3


async def test_a_refused_key_is_a_clear_error_remembered_briefly(token_uri: str) -> None:
    clock = Clock()
    account = service_account(token_uri, refuse=True)
    tokens = VertexTokens(token_uris={token_uri}, clock=clock)
    with pytest.raises(TokenRefused) as refused:
        await tokens.token(account.json)
    assert refused.value.status == 401
    assert "invalid_grant" in str(refused.value)
    assert "Google refused" in str(refused.value)
    assert account.info["private_key"][40:80] not in str(refused.value)
    results = await asyncio.gather(
        *(tokens.token(account.json) for _ in range(10)), return_exceptions=True
    )
    assert all(isinstance(result, TokenRefused) for result in results)
    assert account.exchanges == 1  # the burst was answered from memory
    clock.ahead = 6
    with pytest.raises(TokenRefused):
        await tokens.token(account.json)
    assert account.exchanges == 2
    assert account.tokens == []


async def test_a_failed_refresh_falls_back_on_the_unexpired_token(token_uri: str) -> None:
    clock = Clock()
    account = service_account(token_uri)
    tokens = VertexTokens(token_uris={token_uri}, clock=clock)
    first = await tokens.token(account.json)
    account.refuse = True
    clock.ahead = 3600 - REFRESH_MARGIN_S + 100  # stale, but with minutes left
    assert await tokens.token(account.json) == first
    assert account.exchanges == 2
    assert await tokens.token(account.json) == first  # the failure is held: no new exchange
    assert account.exchanges == 2
    clock.ahead = 3600 - 10  # nearly expired: no longer handed out
    with pytest.raises(TokenRefused):
        await tokens.token(account.json)
    assert account.exchanges == 3
    account.refuse = False
    clock.ahead += FAILURE_HOLD_S
    assert await tokens.token(account.json) == account.tokens[1]
    assert account.exchanges == 4


async def test_an_assertion_signed_by_another_key_is_refused(token_uri: str) -> None:
    account, impostor = service_account(token_uri), service_account(token_uri)
    forged = {**account.info, "private_key": impostor.info["private_key"]}
    tokens = VertexTokens(token_uris={token_uri})
    with pytest.raises(TokenRefused, match="Invalid JWT Signature"):
        await tokens.token(json.dumps(forged))
    assert account.tokens == []
    assert impostor.tokens == []


async def test_an_unreachable_token_endpoint(unused_port: int) -> None:
    uri = f"http://127.0.0.1:{unused_port}/token"
    account = service_account(uri)
    tokens = VertexTokens(token_uris={uri})
    with pytest.raises(TokenUnavailable, match="could not be reached") as failed:
        await asyncio.wait_for(tokens.token(account.json), 30)
    assert failed.value.status == 502


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _documents(info: dict[str, Any]) -> list[tuple[str, str]]:
    """Documents refused before any exchange, and a word each refusal must say."""
    without_key = {k: v for k, v in info.items() if k != "private_key"}
    return [
        ("{not json", "not valid JSON"),
        (json.dumps([info]), "not a service account"),
        (json.dumps({**info, "type": "authorized_user"}), "not a service account"),
        (json.dumps(without_key), "lacks private_key"),
        (json.dumps({**info, "client_email": 7}), "lacks client_email"),
        (json.dumps({**info, "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n"}), "unusable"),
        (json.dumps({**info, "token_uri": "http://169.254.169.254/token"}), "token_uri"),
        (json.dumps({**info, "universe_domain": "example.eu"}), "googleapis.com"),
    ]


async def test_bad_documents_are_refused_without_quoting_them(token_uri: str) -> None:
    account = service_account(token_uri)
    tokens = VertexTokens(token_uris={token_uri})
    secret = account.info["private_key"].splitlines()[5]
    for document, says in _documents(account.info):
        with pytest.raises(InvalidServiceAccount, match=says) as refused:
            await tokens.token(document)
        assert isinstance(refused.value, InvalidInput)
        assert refused.value.status == 400
        assert refused.value.code == "invalid_service_account"
        assert secret not in str(refused.value)
        assert refused.value.__cause__ is None
        assert refused.value.__context__ is None or refused.value.__suppress_context__
    assert account.exchanges == 0


async def test_only_googles_token_endpoints_by_default(token_uri: str) -> None:
    account = service_account(token_uri)
    with pytest.raises(InvalidServiceAccount, match="token_uri"):
        await VertexTokens().token(account.json)
    assert account.exchanges == 0


def test_project_of() -> None:
    document = {"type": "service_account", "project_id": "my-proj"}
    assert project_of(json.dumps(document)) == "my-proj"
    with pytest.raises(InvalidServiceAccount, match="project_id"):
        project_of(json.dumps({**document, "project_id": ""}))
    with pytest.raises(InvalidServiceAccount, match="not valid JSON"):
        project_of("")
    with pytest.raises(InvalidServiceAccount, match="not a service account"):
        project_of(json.dumps({"project_id": "x"}))
