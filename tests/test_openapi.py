"""The committed OpenAPI document matches the code (CI fails on drift)."""

from __future__ import annotations

from heliograph.api.openapi import COMMITTED, render


def test_committed_openapi_matches_the_code() -> None:
    assert COMMITTED.exists(), "run: python -m heliograph.api.openapi"
    assert COMMITTED.read_text() == render(), (
        "the API changed: regenerate with `python -m heliograph.api.openapi` and commit it"
    )


def test_every_route_has_an_operation_id() -> None:
    import json

    spec = json.loads(render())
    missing = [
        f"{method.upper()} {path}"
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
        if not operation.get("operationId") or "_" in operation["operationId"]
    ]
    assert missing == []
