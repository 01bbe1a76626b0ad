"""OpenAI's `chat.completion` object as the translations build it from a provider's answer: the
assistant message from its text, reasoning and tool calls, and the completion around choices."""

from __future__ import annotations

from typing import Any


def assistant_message(
    texts: list[str], reasoning: list[str], calls: list[dict[str, Any]]
) -> dict[str, Any]:
    """The message: text joined (null when only tools were called), `reasoning_content` when
    the model reasoned, `tool_calls` when it called any."""
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts), "refusal": None}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if calls:
        message["tool_calls"] = calls
        message["content"] = message["content"] or None
    return message


def usage_with_cache(fresh: int, read: int, written: int, output: int) -> dict[str, Any]:
    """OpenAI's usage for a provider that counts cache reads and writes apart from the fresh
    input (Anthropic, Bedrock): OpenAI's prompt tokens include them all."""
    prompt = fresh + read + written
    return {
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
        "prompt_tokens_details": {"cached_tokens": read, "cache_creation_tokens": written},
    }


def completion(
    completion_id: str,
    created: int,
    model: str,
    choices: list[dict[str, Any]],
    usage: dict[str, Any] | None,
) -> dict[str, Any]:
    """The `chat.completion`; `usage` is left out when the provider reported none."""
    chat: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
    }
    if usage is not None:
        chat["usage"] = usage
    return chat
