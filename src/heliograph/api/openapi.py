"""The committed OpenAPI document: `python -m heliograph.api.openapi` rewrites
`schemas/openapi.json`; the test suite fails when the code and that file disagree. Besides what
FastAPI derives from the routes, it documents the error statuses each route really answers, in
the `{data, error}` envelope, so the API fuzzer (`tests/test_fuzz_api.py`) can hold them to it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from heliograph.api.app import build_api_app
from heliograph.api.routes.async_log import ASYNC_LOG_PREFIXES

COMMITTED = Path(__file__).resolve().parents[3] / "schemas" / "openapi.json"

ERROR_SCHEMA = {
    "type": "object",
    "description": "Helicone's envelope for a failure: no data, and a message for people.",
    "properties": {"data": {"type": "null"}, "error": {"type": "string"}},
    "required": ["data", "error"],
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}
# Routes that read the analytics store answer 503 when it cannot (the message is generic).
STORE_PREFIXES = (
    "/healthz",
    "/v1/request/",
    "/v1/session/",
    "/v1/user/",
    "/v1/metrics/",
    "/v1/property/",
    "/v1/helicone-sql/",
    "/v1/price-overrides/recompute",
    "/v1/reports/",  # the report reads the store; sending it needs an SMTP server
)
# The SQL console runs one query per organization at a time and answers 429 to a second;
# sign-in, sign-up and password routes are throttled.
BUSY_PREFIXES = (
    "/v1/helicone-sql/execute",
    "/v1/helicone-sql/download",
    "/v1/auth/signup",
    "/v1/auth/login",
    "/v1/auth/password",
    "/v1/price-overrides/recompute",
)
NOT_FOUND_OPERATIONS = (
    "restorePropertyKey",
    "createProxyKey",
    "runPromptPlayground",
    # prompts: the ids are in the body
    "updatePrompt2025",
    "setPrompt2025VersionEnvironment",
    "removePrompt2025VersionEnvironment",
    "getPrompt2025Version",
    "getPrompt2025Versions",
    "getPrompt2025ProductionVersion",
    "getPrompt2025EnvironmentVersion",
    "getPrompt2025TotalVersions",
)
# The prompt playground relays the gateway's answer: its rate limits, a provider's failure (502)
# and the gateway's own 503 and 504.
GATEWAY_OPERATIONS = ("runPromptPlayground",)
# Successes that are not 200 or not JSON, for routes whose handlers pick them themselves.
SUCCESS_STATUS = {
    "logRequest": "202",
    "createRateLimit": "201",
    "createSavedQuery": "201",
    "createAlert": "201",
}
CONFLICT_OPERATIONS = (
    "createSavedQuery",
    "createAlert",
    "createWebhook",
    "savePriceOverride",
    "updatePriceOverride",
    "putRequestProperty",
    "createPrompt2025",  # a prompt's name, and the caps on prompts and versions
    "updatePrompt2025",
    "renamePrompt2025",
    "patchPrompt2025Name",
    "deletePrompt2025Version",  # a prompt's only version
    "sendWeeklyReport",  # no SMTP server is configured
)
# Successes with a second status: created (201) or replaced (200).
ALSO_SUCCESS = {"savePriceOverride": "201"}  # 409 once a per-organization cap is reached
PUBLIC_PATHS = (  # no key needed: never a 401 or 403
    "/v1/models",
    "/v1/prompt-2025/shared-body/{token}",  # a sealed, expiring link (Helicone's `s3_url`)
)
SUCCESS_CONTENT = {
    ("get", "/metrics"): "text/plain",
    ("post", "/v1/helicone-sql/download"): "text/csv",
    ("post", "/v1/prompt-2025/playground"): "text/event-stream",  # JSON when stream is false
}
DESCRIPTIONS = {
    "400": "Invalid input; the message says which field or limit",
    "401": "Missing or invalid API key, or no live session",
    "403": "Not allowed: the key's permissions or the person's role lack it, the CSRF token is"
    " missing, or the person is not in the organization",
    "404": "No such resource (or no route for this path)",
    "409": "A conflict: a limit of the organization is reached, a name is taken, or the server"
    " lacks what the call needs (the message says which)",
    "413": "Request body too large",
    "429": "Busy: retry after the seconds in Retry-After",
    "502": "The gateway or the provider failed; the message says which",
    "503": "The analytics store could not answer; retry shortly",
    "504": "The provider did not answer in time",
}


def document() -> dict[str, Any]:
    spec: dict[str, Any] = build_api_app(None).openapi()
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            _document_statuses(path, operation)
            if (method, path) in SUCCESS_CONTENT:
                content = {SUCCESS_CONTENT[method, path]: {"schema": {"type": "string"}}}
                operation["responses"]["200"]["content"] = content
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return spec


def _document_statuses(path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)  # validation errors are 400s in the envelope (`envelope.py`)
    success = SUCCESS_STATUS.get(operation.get("operationId", ""))
    if success is not None and "200" in responses:
        responses[success] = responses.pop("200")
    also = ALSO_SUCCESS.get(operation.get("operationId", ""))
    if also is not None and "200" in responses:
        responses[also] = {**responses["200"], "description": "Created"}
    for status in _error_statuses(path, operation):
        content = {"application/json": {"schema": ERROR_REF}}
        responses.setdefault(status, {"description": DESCRIPTIONS[status], "content": content})


def _error_statuses(path: str, operation: dict[str, Any]) -> list[str]:
    statuses = []
    if operation.get("parameters") or operation.get("requestBody"):
        statuses.append("400")
    if path.startswith(("/v1/", *ASYNC_LOG_PREFIXES)) and path not in PUBLIC_PATHS:
        statuses.extend(("401", "403"))
    if "{" in path or operation.get("operationId") in NOT_FOUND_OPERATIONS:
        statuses.append("404")
    if operation.get("operationId") in CONFLICT_OPERATIONS:
        statuses.append("409")
    if operation.get("requestBody"):
        statuses.append("413")
    if path.startswith(BUSY_PREFIXES):
        statuses.append("429")
    if operation.get("operationId") in GATEWAY_OPERATIONS:
        statuses.extend(("429", "502", "503", "504"))
    if path.startswith(STORE_PREFIXES):
        statuses.append("503")
    return statuses


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else COMMITTED
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render())
    print(f"wrote {target}")  # noqa: T201 - a command-line entry point
