"""OpenAI's embeddings request as each provider takes it: unchanged for OpenAI-compatible APIs
(under Azure's deployment path for Azure), and as Gemini's `batchEmbedContents`, whose answer is
turned back into OpenAI's list of embeddings. Embeddings never stream."""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from heliograph.translation import gemini
from heliograph.translation.dialects import Answer, Outgoing, StreamTranslator
from heliograph.translation.errors import Untranslatable

MAX_INPUTS = 2048  # OpenAI's own limit on one request's inputs
GEMINI_MAX_INPUTS = 100  # batchEmbedContents refuses more requests in one batch
GEMINI_FIELDS = frozenset({"model", "input", "dimensions", "encoding_format", "user"})


@dataclass(frozen=True, slots=True)
class OpenAIEmbeddings:
    prefix: str = "/v1"
    name: str = "openai-embeddings"
    translates: bool = False

    def request(self, body: dict[str, Any], model: str, stream: bool) -> Outgoing:
        return Outgoing(f"{self.prefix}/embeddings", orjson.dumps({**body, "model": model}))

    def answer(self, status: int, body: bytes, error_type: str | None, answer: Answer) -> bytes:
        return body

    def stream(self, answer: Answer) -> StreamTranslator:
        raise NotImplementedError("embeddings never stream")


@dataclass(frozen=True, slots=True)
class AzureEmbeddings:
    api_version: str
    name: str = "azure-embeddings"
    translates: bool = False

    def request(self, body: dict[str, Any], model: str, stream: bool) -> Outgoing:
        deployment, version = quote(model, safe=""), quote(self.api_version, safe="")
        path = f"/openai/deployments/{deployment}/embeddings?api-version={version}"
        return Outgoing(path, orjson.dumps({k: v for k, v in body.items() if k != "model"}))

    def answer(self, status: int, body: bytes, error_type: str | None, answer: Answer) -> bytes:
        return body

    def stream(self, answer: Answer) -> StreamTranslator:
        raise NotImplementedError("embeddings never stream")


class GeminiEmbeddings:
    """Gemini's batch embeddings; `base64` answers (the OpenAI SDK's default) are packed as
    OpenAI packs them: little-endian float32s."""

    name = "gemini-embeddings"
    translates = True

    def __init__(self, base64_output: bool = False) -> None:
        self._base64_output = base64_output

    def request(self, body: dict[str, Any], model: str, stream: bool) -> Outgoing:
        unknown = sorted(set(body) - GEMINI_FIELDS)
        if unknown:
            raise Untranslatable(f"{unknown[0]}: Gemini's embeddings take no such field")
        if body.get("encoding_format") not in (None, "float", "base64"):
            raise Untranslatable("encoding_format must be float or base64")
        path = gemini.gemini_path(model, False).replace(":generateContent", ":batchEmbedContents")
        item: dict[str, Any] = {"model": f"models/{model}"}
        if body.get("dimensions") is not None:
            item["outputDimensionality"] = body["dimensions"]
        texts = _texts(body)
        if len(texts) > GEMINI_MAX_INPUTS:
            raise Untranslatable(f"input: Gemini embeds at most {GEMINI_MAX_INPUTS} texts a call")
        requests = [{**item, "content": {"parts": [{"text": text}]}} for text in texts]
        return Outgoing(path, orjson.dumps({"requests": requests}))

    def answer(self, status: int, body: bytes, error_type: str | None, answer: Answer) -> bytes:
        if status != 200:
            return orjson.dumps(gemini.error_to_openai(status, body))
        document = orjson.loads(body)
        embeddings = document.get("embeddings") if isinstance(document, dict) else None
        if not isinstance(embeddings, list):
            raise Untranslatable("Gemini answered without `embeddings`")
        encode = _base64 if self._base64_output else list
        data = [
            {"object": "embedding", "index": index, "embedding": encode(_values(item))}
            for index, item in enumerate(embeddings)
        ]
        # Gemini's batch embeddings report no token counts.
        usage = {"prompt_tokens": 0, "total_tokens": 0}
        return orjson.dumps({"object": "list", "data": data, "model": answer.model, "usage": usage})

    def stream(self, answer: Answer) -> StreamTranslator:
        raise NotImplementedError("embeddings never stream")


def _values(item: Any) -> list[float]:
    """One embedding's numbers; anything else is not an embedding the client can use (and a
    dropped item would shift every index after it)."""
    values = item.get("values") if isinstance(item, dict) else None
    if not isinstance(values, list) or not all(
        isinstance(value, int | float) and not isinstance(value, bool) for value in values
    ):
        raise Untranslatable("Gemini answered an embedding that is not a list of numbers")
    return values


def _base64(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def check_input(body: dict[str, Any]) -> None:
    """`input` is text or a list of texts (token arrays only where passed through unchanged)."""
    value = body.get("input")
    if isinstance(value, str) and value:
        return
    if isinstance(value, list) and 0 < len(value) <= MAX_INPUTS:
        return
    raise Untranslatable(f"`input` must be a non-empty string or a list of 1 to {MAX_INPUTS}")


def _texts(body: dict[str, Any]) -> list[str]:
    value = body["input"]
    texts = [value] if isinstance(value, str) else value
    if not all(isinstance(text, str) and text for text in texts):
        raise Untranslatable("input: Gemini embeds text only, not token arrays")
    return list(texts)
