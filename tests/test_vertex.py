"""Google Vertex AI through the unified API: Gemini models through generateContent and Claude
models through `rawPredict`, in the project of the service account whose token the gateway gets
(from the operator's GOOGLE_APPLICATION_CREDENTIALS, or an organization's stored key), exchanged
for real with a fake Google token endpoint; one exchange serves many calls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest

from conftest import Fake, Heliograph, heliograph_settings, start_heliograph
from fake_provider import TEXT
from fake_provider.google_oauth import FakeAccount, service_account, write_service_account


@pytest.fixture
async def vertex(
    tmp_path: Path, analytics_dir: Path, fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Heliograph, FakeAccount]]:
    account = write_service_account(
        tmp_path / "sa.json", f"{fake.origin}/token", project="acme-prod"
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "sa.json"))
    monkeypatch.setenv("VERTEX_LOCATION", "europe-west4")
    monkeypatch.delenv("VERTEX_PROJECT", raising=False)
    settings = heliograph_settings(
        tmp_path, analytics_dir, fake, allowed_target_origins=(fake.origin,)
    )
    instance = await start_heliograph(settings)
    yield instance, account
    await instance.running.stop()


def sdk(hg: Heliograph, key: str | None = None) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{hg.gateway}/v1", api_key=key or hg.api_key, max_retries=0)


@pytest.mark.parametrize(
    ("model", "publisher", "method"),
    [
        ("gemini-2.5-flash", "google", "generateContent"),
        ("claude-sonnet-4-5@20250929", "anthropic", "rawPredict"),
    ],
)
async def test_vertex_serves_gemini_and_claude_with_a_service_account_token(
    vertex: tuple[Heliograph, FakeAccount], fake: Fake, model: str, publisher: str, method: str
) -> None:
    hg, account = vertex
    for _ in range(3):
        raw = await sdk(hg).chat.completions.with_raw_response.create(
            model=f"{model}/vertex", messages=[{"role": "user", "content": "Hi"}]
        )
        assert raw.parse().choices[0].message.content == TEXT
    assert account.exchanges == 1, "one token serves every call until it nears its expiry"
    seen = fake.seen.requests[-1]
    assert seen["path"] == (
        f"/v1/projects/acme-prod/locations/europe-west4/publishers/{publisher}"
        f"/models/{model}:{method}"
    )
    assert seen["headers"]["authorization"] == f"Bearer {account.tokens[-1]}"
    row = await hg.wait_for(raw.headers["helicone-id"], timeout_s=5)
    assert row["provider"] == "VERTEX"
    assert row["prompt_tokens"] > 0
    assert row["cost"] > 0


async def test_vertex_streams_are_translated(
    vertex: tuple[Heliograph, FakeAccount], fake: Fake
) -> None:
    hg, _ = vertex
    for model in ("gemini-2.5-flash", "claude-sonnet-4-5@20250929"):
        stream = await sdk(hg).chat.completions.create(
            model=f"{model}/vertex", messages=[{"role": "user", "content": "Hi"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == TEXT, model
        assert "stream" in fake.seen.requests[-1]["path"].lower()


async def test_an_organizations_own_service_account_is_used_in_its_own_project(
    vertex: tuple[Heliograph, FakeAccount], fake: Fake
) -> None:
    hg, operators = vertex
    _, other_key = hg.new_organization("byo-google")
    own = service_account(f"{fake.origin}/token", project="their-project")
    status, _ = await hg.api_post(
        "/v1/api-keys/provider-key",
        {"providerName": "vertex", "providerKey": own.json, "providerKeyName": "sa"},
        key=other_key,
    )
    assert status == 201
    await sdk(hg, other_key).chat.completions.create(
        model="gemini-2.5-flash/vertex", messages=[{"role": "user", "content": "Hi"}]
    )
    seen = fake.seen.requests[-1]
    assert "/projects/their-project/" in seen["path"]
    assert seen["headers"]["authorization"] == f"Bearer {own.tokens[-1]}"
    assert operators.exchanges == 0


async def test_a_refused_token_is_a_clear_error_and_nothing_is_sent(
    vertex: tuple[Heliograph, FakeAccount], fake: Fake
) -> None:
    hg, account = vertex
    account.refuse = True
    before = len(fake.seen.requests)
    with pytest.raises(openai.BadRequestError) as raised:
        await sdk(hg).chat.completions.create(
            model="gemini-2.5-flash/vertex", messages=[{"role": "user", "content": "Hi"}]
        )
    assert "gemini-2.5-flash/vertex" in str(raised.value)
    assert [r for r in fake.seen.requests[before:] if "/projects/" in r["path"]] == []
