"""Schemathesis against the committed OpenAPI document (`schemas/openapi.json`) on a live
Heliograph with a valid key: generated inputs, valid and invalid, never get a server error or a
status (or error body) the document does not list. Examples are bounded to keep CI well under a
minute; the seed is fixed so a failure reproduces."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import Heliograph, heliograph_settings, start_heliograph
from heliograph.api.openapi import COMMITTED

# A deeper local run: HELIOGRAPH_FUZZ_EXAMPLES=200 pytest tests/test_fuzz_api.py
EXAMPLES_PER_OPERATION = int(os.environ.get("HELIOGRAPH_FUZZ_EXAMPLES", "8"))
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261202,
        "generation": {"max-examples": EXAMPLES_PER_OPERATION},
        # Examples and fuzzing; the coverage and stateful phases multiply the calls.
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    }
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
schema = schemathesis.openapi.from_path(COMMITTED, config=CONFIG)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, analytics_dir: Path) -> Iterator[Heliograph]:
    """A whole Heliograph serving on loopback from its own thread and event loop, so the
    fuzzer's blocking HTTP calls can reach it; stopped when the module's tests end."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fuzzed-heliograph", daemon=True)
    thread.start()
    settings_ = heliograph_settings(tmp_path_factory.mktemp("fuzz"), analytics_dir, None)
    instance = asyncio.run_coroutine_threadsafe(start_heliograph(settings_), loop).result(60)
    try:
        yield instance
    finally:
        asyncio.run_coroutine_threadsafe(instance.running.stop(), loop).result(60)
        asyncio.run_coroutine_threadsafe(_cancel_the_rest(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def _cancel_the_rest() -> None:
    """Background tasks a stopped server left behind, so the loop closes cleanly."""
    current = asyncio.current_task()
    rest = [task for task in asyncio.all_tasks() if task is not current]
    for task in rest:
        task.cancel()
    await asyncio.gather(*rest, return_exceptions=True)


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_api_answers_as_documented(case: schemathesis.Case[Any], live: Heliograph) -> None:
    case.call_and_validate(base_url=live.api, headers=live.auth(), checks=CHECKS, timeout=10)
