"""Helicone's own loggers pointed at Heliograph: the `helicone-helpers` package's
`HeliconeManualLogger` (a call, a streamed call built chunk by chunk, a custom model's text) and
LiteLLM's `helicone` success callback, each calling the fake provider itself and logging the
call afterwards; the requests are then found through `/v1/request/query-clickhouse` with the
model, tokens and cost the fake's answer is priced at by genai-prices."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before LiteLLM is imported

import litellm
import openai
import pytest
from helicone_helpers import HeliconeManualLogger  # type: ignore[import-untyped]
from helicone_helpers.manual_logger import HeliconeResultRecorder  # type: ignore[import-untyped]

from conftest import Fake, Heliograph
from fake_provider.openai_api import USAGE
from heliograph.domain.pricing import price_usage
from heliograph.providers.openai import usage_from

# LiteLLM's own types trip a pydantic warning the first time it builds a request.
pytestmark = pytest.mark.filterwarnings("ignore:.*using the `ReadOnly` qualifier")
MESSAGES = [{"role": "user", "content": "Say hello ü"}]
FAKE_MODEL = "gpt-4o-mini-2024-07-18"  # what the fake answers a `gpt-4o-mini` request with


async def logged(hg: Heliograph, request_id: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """The request as `/v1/request/query-clickhouse` returns it, once it is there."""
    await hg.wait_for(request_id, timeout_s)
    body = {"filter": {"request_response_rmt": {"request_id": {"equals": request_id}}}}
    status, answer = await hg.api_post("/v1/request/query-clickhouse", body)
    assert status == 200, answer
    (row,) = answer["data"]
    return dict(row)


def assert_priced_like_the_fake(row: dict[str, Any]) -> None:
    usage = usage_from(USAGE)  # the fake's usage, read as a proxied response's would be
    assert row["model"] == FAKE_MODEL
    assert (row["prompt_tokens"], row["completion_tokens"]) == (
        usage.input_tokens,
        usage.output_tokens,
    )
    assert row["prompt_cache_read_tokens"] == usage.cache_read_tokens
    expected = price_usage(usage, FAKE_MODEL, "openai").cost_nano_usd
    assert expected > 0
    assert round(row["cost"] * 1e9) == expected


def chat(fake: Fake, **options: Any) -> Any:
    client = openai.OpenAI(api_key="sk-fake", base_url=f"{fake.origin}/v1", max_retries=0)
    messages: Any = MESSAGES
    return client.chat.completions.create(model="gpt-4o-mini", messages=messages, **options)


@pytest.mark.parametrize("port", ["api", "gateway"])
async def test_the_manual_logger_logs_a_call(heliograph: Heliograph, fake: Fake, port: str) -> None:
    base = heliograph.api if port == "api" else heliograph.gateway
    logger = HeliconeManualLogger(
        heliograph.api_key, headers={"Helicone-Property-Env": "test"}, logging_endpoint=base
    )
    request_id = str(uuid.uuid4())
    request = {"model": "gpt-4o-mini", "messages": MESSAGES}

    def operation(recorder: HeliconeResultRecorder) -> Any:
        response = chat(fake)
        recorder.append_results(response.model_dump())
        return response

    def log_call() -> Any:
        return logger.log_request(
            request,
            operation,
            additional_headers={"Helicone-Request-Id": request_id, "Helicone-User-Id": "ada"},
            provider="openai",
        )

    response = await asyncio.to_thread(log_call)
    assert response.model == FAKE_MODEL
    row = await logged(heliograph, request_id)
    assert_priced_like_the_fake(row)
    assert (row["provider"], row["request_user_id"]) == ("OPENAI", "ada")
    assert row["properties"] == {"env": "test"}


async def test_the_manual_loggers_builder_logs_a_stream(heliograph: Heliograph, fake: Fake) -> None:
    logger = HeliconeManualLogger(heliograph.api_key, logging_endpoint=heliograph.api)
    request_id = str(uuid.uuid4())
    request = {
        "model": "gpt-4o-mini",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    builder = logger.log_builder(request, {"Helicone-Request-Id": request_id})

    def stream_and_log() -> str:
        text = ""
        for chunk in chat(fake, stream=True, stream_options={"include_usage": True}):
            builder.add_chunk(chunk.model_dump())
            text += "".join(choice.delta.content or "" for choice in chunk.choices)
        asyncio.run(builder.send_log())
        return text

    text = await asyncio.to_thread(stream_and_log)
    row = await logged(heliograph, request_id)
    assert_priced_like_the_fake(row)
    assert row["is_stream"] is True
    assert row["time_to_first_token"] is not None
    assert text  # the caller got its stream whole


async def test_the_manual_logger_logs_a_custom_models_text(heliograph: Heliograph) -> None:
    logger = HeliconeManualLogger(heliograph.api_key, logging_endpoint=heliograph.gateway)
    request_id = str(uuid.uuid4())
    options = {
        "start_time": 1.7e9,
        "end_time": 1.7e9 + 1.5,
        "additional_headers": {"Helicone-Request-Id": request_id},
    }
    request = {"model": "my-llama", "prompt": "Tell me a joke"}
    await asyncio.to_thread(logger.send_log, None, request, "Why did the chicken...", options)
    row = await logged(heliograph, request_id)
    assert (row["provider"], row["model"], row["delay_ms"]) == ("CUSTOM", "my-llama", 1500)
    assert row["pricing_status"] == "no_usage"


@pytest.fixture
def litellm_logging_to(heliograph: Heliograph) -> Iterator[None]:
    """LiteLLM's `helicone` callback pointed at Heliograph's gateway port, as its docs say:
    `HELICONE_API_KEY`, `HELICONE_API_BASE`."""
    saved = {name: os.environ.get(name) for name in ("HELICONE_API_KEY", "HELICONE_API_BASE")}
    os.environ["HELICONE_API_KEY"] = heliograph.api_key
    os.environ["HELICONE_API_BASE"] = heliograph.gateway
    litellm.telemetry = False
    litellm.success_callback = ["helicone"]
    yield
    litellm.success_callback = []
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.mark.usefixtures("litellm_logging_to")
async def test_litellms_helicone_callback_logs_a_call(heliograph: Heliograph, fake: Fake) -> None:
    request_id = str(uuid.uuid4())

    def complete() -> Any:
        return litellm.completion(
            model="openai/gpt-4o-mini",
            messages=MESSAGES,
            api_base=f"{fake.origin}/v1",
            api_key="sk-fake",
            metadata={"Helicone-Request-Id": request_id, "Helicone-Property-Via": "litellm"},
        )

    response = await asyncio.to_thread(complete)
    assert response.choices[0].message.content
    row = await logged(heliograph, request_id)
    assert_priced_like_the_fake(row)
    assert row["provider"] == "OPENAI"
    assert row["properties"] == {"via": "litellm"}
