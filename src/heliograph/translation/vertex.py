"""Google Vertex AI's request shapes for Gemini and Claude: the host, the paths (every segment
checked so none can leave its place) and Claude's body. Answers need no translation of their
own: Vertex's Gemini answers are generateContent's, Claude's are Messages'; only Claude's
errors come in either Google's or Anthropic's shape, told apart in `anthropic_error_to_openai`."""

from __future__ import annotations

import re
from typing import Any

import orjson

from heliograph.translation import anthropic, gemini
from heliograph.translation.errors import Untranslatable

# Vertex's documented `anthropic_version` for Claude (in the body, not a header).
ANTHROPIC_VERSION = "vertex-2023-10-16"

# Only characters a path segment carries as themselves: nothing to encode, so nothing to
# smuggle (`/`, `?`, `#`, `%`, `\` and spaces are refused, not encoded). A project may be
# domain-scoped (`example.com:project`); a model may carry a version (`claude-x@20250929`)
# but never `:`, which would name another method.
_PROJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:_-]{0,127}")
_LOCATION = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")
_MAX_LOCATION = 63  # one DNS label: the location is part of the host

# Locations served by a host other than `{location}-aiplatform.googleapis.com`.
_HOSTS = {
    "global": "https://aiplatform.googleapis.com",
    "us": "https://aiplatform.us.rep.googleapis.com",
    "eu": "https://aiplatform.eu.rep.googleapis.com",
}


def vertex_host(location: str) -> str:
    """The origin serving `location` (`us-central1`, `europe-west4`, `global`, ...)."""
    _check_location(location)
    return _HOSTS.get(location) or f"https://{location}-aiplatform.googleapis.com"


def vertex_gemini_path(project: str, location: str, model: str, stream: bool) -> str:
    """The path of a Gemini model's generateContent (or its SSE stream) on Vertex."""
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return _model_path(project, location, "google", model, method)


def vertex_anthropic_path(project: str, location: str, model: str, stream: bool) -> str:
    """The path of a Claude model's Messages call (`rawPredict`, or `streamRawPredict`)."""
    method = "streamRawPredict" if stream else "rawPredict"
    return _model_path(project, location, "anthropic", model, method)


def chat_to_vertex_anthropic(chat: dict[str, Any], model: str) -> dict[str, Any]:
    """The Messages body Vertex takes for Claude: the model is in the path, not the body, and
    `anthropic_version` names the API version."""
    body = anthropic.chat_to_messages(chat, model)
    del body["model"]
    body["anthropic_version"] = ANTHROPIC_VERSION
    return body


def anthropic_error_to_openai(status: int, body: bytes) -> dict[str, Any]:
    """OpenAI's error object for a Vertex error answer to a Claude call: Vertex itself (auth,
    quota, an unknown model) answers in Google's shape (`error.status`), Claude in Anthropic's
    (`error.type`)."""
    if _google_shaped(body):
        return gemini.error_to_openai(status, body)
    return anthropic.error_to_openai(status, body)


def _google_shaped(body: bytes) -> bool:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    if isinstance(document, list) and document:
        document = document[0]
    error = document.get("error") if isinstance(document, dict) else None
    return isinstance(error, dict) and isinstance(error.get("status"), str) and "type" not in error


def _model_path(project: str, location: str, publisher: str, model: str, method: str) -> str:
    if not _PROJECT.fullmatch(project) or ".." in project:
        raise Untranslatable(f"project: {project[:80]!r} is not a Google Cloud project id")
    _check_location(location)
    if not _MODEL.fullmatch(model) or ".." in model:
        raise Untranslatable(f"model: {model[:80]!r} is not a Vertex AI model name")
    return (
        f"/v1/projects/{project}/locations/{location}/publishers/{publisher}"
        f"/models/{model}:{method}"
    )


def _check_location(location: str) -> None:
    if len(location) > _MAX_LOCATION or not _LOCATION.fullmatch(location):
        raise Untranslatable(f"location: {location[:80]!r} is not a Vertex AI location")
