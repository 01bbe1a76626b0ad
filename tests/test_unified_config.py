"""The gateway configuration file (HELIOGRAPH_CONFIG) behind the unified API: a local
OpenAI-compatible server with its own prices, a model spread over Azure deployments with
weights, a circuit breaker that rests a failing deployment, and a file that is refused at start
with the key at fault."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from conftest import Fake, Heliograph, heliograph_settings, start_heliograph
from fake_provider import TEXT
from heliograph.domain.gateway_config import GatewayConfigError

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello"}]


def config_text(origin: str) -> str:
    return f"""
[[providers]]
name = "ollama"
base_url = "{origin}/v1"
models = ["llama3.1:8b"]
prices."llama3.1:8b" = {{ input_per_mtok = "1.00", output_per_mtok = "2.00" }}

[[deployments]]
model = "team-gpt"
provider = "azure"
upstream_model = "gpt-4o-mini"
api_base = "{origin}"
api_version = "2024-10-21"
api_key_env = "AZURE_EAST_KEY"
weight = 1

[[deployments]]
model = "team-gpt"
provider = "azure"
upstream_model = "error-500"
api_base = "{origin}"
api_version = "2024-10-21"
api_key_env = "AZURE_WEST_KEY"
weight = 1000

[[deployments]]
model = "capped-gpt"
provider = "azure"
upstream_model = "gpt-4o-mini"
api_base = "{origin}"
api_key_env = "AZURE_EAST_KEY"
tpm = 40

[[deployments]]
model = "capped-gpt"
provider = "azure"
upstream_model = "overflow"
api_base = "{origin}"
api_key_env = "AZURE_WEST_KEY"

[routing.capped-gpt]
strategy = "lowest-cost"           # gpt-4o-mini has a price, "overflow" none: it comes last

[routing.team-gpt]
strategy = "weighted"
cooldown_s = 60
failures_to_cool_down = 2
"""


@pytest.fixture
async def configured(
    tmp_path: Path, analytics_dir: Path, fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Heliograph]:
    path = tmp_path / "heliograph.toml"
    path.write_text(config_text(fake.origin))
    monkeypatch.setenv("AZURE_EAST_KEY", "east-key")
    monkeypatch.setenv("AZURE_WEST_KEY", "west-key")
    settings = heliograph_settings(tmp_path, analytics_dir, fake, config=path)
    instance = await start_heliograph(settings)
    yield instance
    await instance.running.stop()


def client(hg: Heliograph) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{hg.gateway}/v1", api_key=hg.api_key, max_retries=0)


async def test_a_local_provider_is_called_without_a_key_and_priced_from_the_file(
    configured: Heliograph, fake: Fake
) -> None:
    raw = await client(configured).chat.completions.with_raw_response.create(
        model="llama3.1:8b", messages=MESSAGES
    )
    assert raw.parse().choices[0].message.content == TEXT
    seen = fake.seen.requests[-1]
    assert seen["path"] == "/v1/chat/completions"
    assert seen["body"]["model"] == "llama3.1:8b"
    assert "authorization" not in seen["headers"], "a local server is sent no key"
    row = await configured.wait_for(raw.headers["helicone-id"], timeout_s=5)
    assert row["provider"] == "OLLAMA"
    # The fake's usage: 21 prompt tokens (5 cached) and 9 completion tokens, at $1 and $2/Mtok.
    assert row["cost"] == pytest.approx((21 * 1.0 + 9 * 2.0) / 1e6, rel=1e-6)


async def test_deployments_fail_over_and_a_failing_one_is_rested(
    configured: Heliograph, fake: Fake
) -> None:
    sdk = client(configured)
    rows: list[Any] = []
    for _ in range(2):  # weight 1000 puts the failing deployment first (almost always)
        raw = await sdk.chat.completions.with_raw_response.create(
            model="team-gpt", messages=MESSAGES
        )
        assert raw.parse().choices[0].message.content == TEXT
        rows.append(await configured.wait_for(raw.headers["helicone-id"], timeout_s=5))
    assert rows[0]["provider"] == "AZURE"
    assert rows[0]["properties"]["Helicone-Deployment"] == f"gpt-4o-mini@127.0.0.1:{fake.port}"
    assert "azure:error-500@" in rows[0]["properties"]["Helicone-Attempts"]
    assert rows[0]["cost"] > 0, "priced as the model Azure says answered"
    seen = fake.seen.requests[-1]
    assert seen["path"] == "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"
    assert seen["headers"]["api-key"] == "east-key"
    # Two failures cooled the failing deployment down: the next call goes straight to the other.
    before = len(fake.seen.requests)
    raw = await sdk.chat.completions.with_raw_response.create(model="team-gpt", messages=MESSAGES)
    row = await configured.wait_for(raw.headers["helicone-id"], timeout_s=5)
    assert len(fake.seen.requests) == before + 1
    assert row["attempts"] == 1
    assert "Helicone-Attempts" not in row["properties"], "one attempt: the columns say it all"
    assert row["properties"]["Helicone-Deployment"].startswith("gpt-4o-mini@")


async def test_a_bad_file_stops_the_start_naming_the_key(
    tmp_path: Path, analytics_dir: Path, fake: Fake
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[providers]]\nname = "ollama"\nbase_url = "ftp://x"\nmodels = ["m"]\n')
    settings = heliograph_settings(tmp_path, analytics_dir, fake, config=path)
    with pytest.raises(GatewayConfigError, match=r"bad\.toml.*providers\[0\]\.base_url"):
        await start_heliograph(settings)


async def test_a_deployment_at_its_tokens_per_minute_is_skipped(
    configured: Heliograph, fake: Fake
) -> None:
    sdk = client(configured)
    deployments = []
    for _ in range(3):  # each answer counts 30 tokens toward the first deployment's 40
        await sdk.chat.completions.create(model="capped-gpt", messages=MESSAGES)
        deployments.append(fake.seen.requests[-1]["path"].split("/")[3])
    assert deployments == ["gpt-4o-mini", "gpt-4o-mini", "overflow"]
