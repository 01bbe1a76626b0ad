"""What every provider module provides, and the parsed result of one response."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote

from heliograph.domain.usage import UNKNOWN_USAGE, Usage
from heliograph.providers.sse import load_json


@dataclass(frozen=True, slots=True)
class Parsed:
    """Model and usage read from one response; `model` is "" when the response does not say."""

    model: str = ""
    usage: Usage = UNKNOWN_USAGE


class UsageParser(Protocol):
    def __call__(self, body: bytes, is_stream: bool) -> Parsed: ...


@dataclass(frozen=True, slots=True)
class Provider:
    """An upstream LLM API reachable under `/{prefix}/...` on the gateway."""

    name: str  # Helicone's provider string, stored in the `provider` column
    prefix: str
    origin: str
    parse: UsageParser
    price_id: str | None  # genai-prices provider id
    # OpenAI-style chat streams only report usage when asked; the gateway asks for them.
    injects_stream_usage: bool = False
    stream_in_path: tuple[str, ...] = ()


def request_model(path: str, body: Any) -> str:
    """The model named by the request: the body's `model`, else `models/<m>` in the path (or
    Bedrock's `model/<id>`, percent-encoded as one segment)."""
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        return str(body["model"])
    marker = "/models/"
    if marker in path:
        tail = path.split(marker, 1)[1]
        return tail.split(":", 1)[0].split("/", 1)[0]
    if path.startswith("/model/"):
        return unquote(path[len("/model/") :].split("/", 1)[0].split("?", 1)[0])
    return ""


def parse_body(
    body: bytes,
    is_stream: bool,
    from_stream: Callable[[bytes], Parsed],
    from_document: Callable[[dict[str, Any]], Parsed],
) -> Parsed:
    """A stream read by `from_stream`, else a JSON object read by `from_document`; a body that
    is neither says nothing."""
    if is_stream:
        return from_stream(body)
    document = load_json(body)
    return from_document(document) if isinstance(document, dict) else Parsed()


def model_of(document: dict[str, Any]) -> str:
    """The `model` a response object names, or "" when it names none."""
    model = document.get("model")
    return model if isinstance(model, str) else ""
