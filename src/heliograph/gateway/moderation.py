"""`Helicone-Moderations-Enabled`: before an OpenAI chat request goes out, its last user message
is checked with OpenAI's moderation endpoint, using the caller's own key. A flagged prompt is
answered 400 `PROMPT_FLAGGED_FOR_MODERATION` and never forwarded. A moderation call that fails
lets the request through with a warning header (fail open, like rate limits)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aiohttp
import orjson

log = logging.getLogger("heliograph.moderation")
FLAGGED_CODE = "PROMPT_FLAGGED_FOR_MODERATION"
AUTH_HEADERS = ("authorization", "openai-organization", "openai-project")


@dataclass(frozen=True, slots=True)
class Verdict:
    flagged: bool
    categories: tuple[str, ...] = ()
    warning: str = ""


def last_user_message(body: bytes) -> str | None:
    """The text of the last `user` message of a chat request, or None."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    messages = document.get("messages") if isinstance(document, dict) else None
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text(message.get("content"))
    return None


def _text(content: object) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(part for part in parts if isinstance(part, str)) or None
    return None


async def moderate(
    session: aiohttp.ClientSession, origin: str, headers: list[tuple[str, str]], text: str
) -> Verdict:
    auth = [(name, value) for name, value in headers if name.lower() in AUTH_HEADERS]
    auth.append(("Accept-Encoding", "identity"))  # the shared session does not decompress
    try:
        async with session.post(
            f"{origin}/v1/moderations", json={"input": text}, headers=auth
        ) as response:
            if response.status != 200:
                return Verdict(False, warning=f"moderation returned {response.status}")
            result = orjson.loads(await response.read())
    except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as error:
        log.warning("moderation unavailable, failing open: %s", error)
        return Verdict(False, warning="moderation unavailable")
    first = (result.get("results") or [{}])[0] if isinstance(result, dict) else {}
    categories = first.get("categories") or {}
    flagged_names = tuple(sorted(name for name, hit in categories.items() if hit))
    return Verdict(bool(first.get("flagged")), flagged_names)
