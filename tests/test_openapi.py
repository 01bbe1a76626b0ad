"""The committed OpenAPI document matches the code (CI fails on drift)."""

from __future__ import annotations

from typing import get_args

from pydantic import BaseModel

from heliograph.api.openapi import COMMITTED, render
from heliograph.api.schemas import (
    MetricsBody,
    SessionMetricsBody,
    SessionQueryBody,
    UserMetricsBody,
)
from heliograph.domain.queries import INCREMENTS, QUANTILE_METRICS, SESSION_PERCENTILES
from heliograph.domain.sorts import DIRECTIONS, SESSION_SORT_KEYS


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


def test_the_documented_choices_are_the_domains() -> None:
    """The schemas spell their choices as literals (so the document lists them); each is exactly
    the domain's set, the one the services and SQL builders use."""

    def choices(model: type[BaseModel], field: str) -> tuple[object, ...]:
        return get_args(model.model_fields[field].annotation)

    assert choices(SessionQueryBody, "sort") == SESSION_SORT_KEYS
    assert choices(SessionQueryBody, "sortDirection") == DIRECTIONS
    assert choices(SessionMetricsBody, "pSize") == tuple(SESSION_PERCENTILES)
    assert choices(MetricsBody, "dbIncrement") == INCREMENTS
    assert choices(MetricsBody, "metric") == QUANTILE_METRICS
    user_sort, _ = choices(UserMetricsBody, "sort")  # dict[str, Literal[...]] | None
    assert get_args(get_args(user_sort)[1]) == DIRECTIONS
