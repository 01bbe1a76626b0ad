"""Whatever a record holds, its row builds and the store takes it: usage that would cost more than
the `cost UInt64` column holds is stored unpriced, text columns are cut to their caps, counts kept
in their columns' range; and the raw-body reader and the collector pause the log routes use."""

from __future__ import annotations

import gc
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from heliograph.analytics.chdb_executor import ChdbExecutor
from heliograph.analytics.migrate import apply_migrations
from heliograph.domain.pricing import (
    MAX_COST_USD,
    PriceOverride,
    PriceStatus,
    price_usage,
    price_with_override,
    priced,
)
from heliograph.domain.record import (
    MAX_ATTRIBUTION_CHARS,
    MAX_STORED_PROPERTIES,
    Attribution,
    RequestRecord,
)
from heliograph.domain.usage import Usage
from heliograph.ingest.async_log import InvalidAsyncLog, load_body, record_from_async_log
from heliograph.ingest.collector import collector_paused
from heliograph.ingest.helicone_rows import request_from_helicone
from heliograph.ingest.rows import RowBuilder
from heliograph.providers.registry import build_registry

NEAR_INT64 = 9_000_000_000_000_000_000


def builder(tmp_path: Path) -> RowBuilder:
    providers = {provider.name: provider for provider in build_registry({}).values()}
    return RowBuilder(providers, tmp_path / "bodies", 8 * 1024 * 1024)


def record(organization_id: str, **changes: Any) -> RequestRecord:
    base: dict[str, Any] = {
        "request_id": str(uuid.uuid4()),
        "organization_id": organization_id,
        "created_at": datetime.now(UTC),
        "provider": "OPENAI",
        "target_url": "https://api.openai.com/v1/chat/completions",
        "path": "/v1/chat/completions",
        "method": "POST",
        "request_body": b"",
        "status": 200,
        "client_request_id": True,
    }
    return RequestRecord(**{**base, **changes})


def store(executor: ChdbExecutor, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Insert rows as the writer does (one JSON line each) and read them back."""
    apply_migrations(executor)
    executor.insert(
        "request_response", b"\n".join(orjson.dumps(row) for row in rows), str(uuid.uuid4())
    )
    return executor.query(
        "SELECT toString(request_id) AS id, model, provider, user_id, prompt_tokens, cost,"
        " pricing_status, properties FROM request_response"
        " WHERE organization_id = {org:UUID} ORDER BY prompt_tokens",
        {"org": rows[0]["organization_id"]},
    )


def test_usage_near_int64_is_stored_unpriced_not_lost(
    tmp_path: Path, chdb_executor: ChdbExecutor
) -> None:
    organization_id = str(uuid.uuid4())
    huge = {"model": "gpt-4o", "promptTokens": NEAR_INT64, "completionTokens": NEAR_INT64}
    fine = {"model": "gpt-4o", "promptTokens": 1000, "completionTokens": 10}
    build = builder(tmp_path).build
    rows = [
        build(record(organization_id, reported=huge)).row,
        build(record(organization_id, reported=fine)).row,
    ]
    assert (rows[0]["cost"], rows[0]["pricing_status"]) == (0, PriceStatus.NO_USAGE)
    assert rows[1]["pricing_status"] == PriceStatus.PRICED
    assert rows[1]["cost"] > 0
    stored = store(chdb_executor, rows)
    assert [row["prompt_tokens"] for row in stored] == [1000, NEAR_INT64]
    assert [row["pricing_status"] for row in stored] == ["priced", "no_usage"]
    assert stored[1]["cost"] == 0


def test_counts_past_int64_or_negative_are_kept_in_range(
    tmp_path: Path, chdb_executor: ChdbExecutor
) -> None:
    organization_id = str(uuid.uuid4())
    reported = {"model": "gpt-4o", "promptTokens": 2**70, "completionTokens": -5}
    row = builder(tmp_path).build(record(organization_id, reported=reported)).row
    assert (row["prompt_tokens"], row["completion_tokens"]) == (2**63 - 1, 0)
    assert (row["cost"], row["pricing_status"]) == (0, PriceStatus.NO_USAGE)
    assert store(chdb_executor, [row])[0]["prompt_tokens"] == 2**63 - 1


@pytest.mark.parametrize("cost", [float("inf"), float("nan"), -1.0, 1e300, 2e6])
def test_an_impossible_reported_cost_is_unpriced(tmp_path: Path, cost: float) -> None:
    reported = {"model": "gpt-4o", "promptTokens": 10, "cost": cost}
    row = builder(tmp_path).build(record(str(uuid.uuid4()), reported=reported)).row
    assert (row["cost"], row["pricing_status"]) == (0, PriceStatus.NO_USAGE)


def test_prices_stop_at_the_largest_real_cost() -> None:
    assert priced(MAX_COST_USD).cost_nano_usd == 10**15
    assert priced(MAX_COST_USD + Decimal("0.000000001")).status == PriceStatus.NO_USAGE
    assert priced(Decimal("-0.01")).status == PriceStatus.NO_USAGE
    huge = Usage(input_tokens=NEAR_INT64, output_tokens=NEAR_INT64)
    assert price_usage(huge, "gpt-4o", "openai").status == PriceStatus.NO_USAGE
    assert priced(Decimal("NaN")).status == PriceStatus.NO_USAGE
    costly = PriceOverride("", "m", Decimal(1_000_000), Decimal(1_000_000))
    assert price_with_override(huge, costly).status == PriceStatus.NO_USAGE
    assert price_with_override(Usage(input_tokens=1_000_000), costly).cost_nano_usd == 10**15


def test_text_columns_are_cut_to_their_caps(tmp_path: Path, chdb_executor: ChdbExecutor) -> None:
    organization_id = str(uuid.uuid4())
    long_key = "k" * 1000
    properties = {long_key: "v" * 20_000, **{f"p{n}": "v" for n in range(100)}}
    attribution = Attribution(user_id="u\ud800" * 600_000, properties=properties)
    request_body = orjson.dumps({"model": "m" * 1_000_000, "messages": []})
    row = (
        builder(tmp_path)
        .build(
            record(
                organization_id,
                provider="P" * 1000,
                request_body=request_body,
                attribution=attribution,
                target_url="https://x/" + "a" * 100_000,
                path="/" + "a" * 100_000,
                error="e" * 100_000,
            )
        )
        .row
    )
    assert len(row["model"]) == len(row["request_model"]) == 256
    assert len(row["provider"]) == 64
    assert len(row["user_id"]) == MAX_ATTRIBUTION_CHARS
    assert "\ud800" not in row["user_id"]
    assert len(row["target_url"]) == len(row["request_path"]) == len(row["error"]) == 8192
    assert len(row["properties"]) == MAX_STORED_PROPERTIES
    assert len(row["properties"]["k" * 256]) == 10_000
    stored = store(chdb_executor, [row])[0]
    assert stored["model"] == "m" * 256
    assert len(stored["properties"]) == MAX_STORED_PROPERTIES


def test_an_imported_helicone_row_is_capped_as_every_source_is(
    chdb_executor: ChdbExecutor,
) -> None:
    """An export row is stored as a logged request would be: text columns cut, at most 64
    custom properties and the three session ones, and a cost past any real one unpriced."""
    organization_id = str(uuid.uuid4())
    properties = {
        "Helicone-Session-Id": "s" * 5000,
        "Helicone-Session-Path": "/a",
        "Helicone-Session-Name": "n",
        "k" * 1000: "v\ud800" * 20_000,
        **{f"p{n}": "v" for n in range(500)},
    }
    source = {
        "request_id": str(uuid.uuid4()),
        "request_created_at": "2025-03-01 10:00:00.000",
        "status": 200,
        "model": "m" * 100_000,
        "provider": "P" * 1000,
        "user_id": "u" * 100_000,
        "target_url": "https://x/" + "a" * 100_000,
        "prompt_tokens": 7,
        "completion_tokens": 1,
        "cost": int(MAX_COST_USD) * 10**9 + 1,  # nano-dollars: past the largest real cost
        "properties": properties,
    }
    row = request_from_helicone(source, organization_id, 8 * 1024 * 1024).row
    assert len(row["model"]) == len(row["request_model"]) == 256
    assert len(row["provider"]) == 64
    assert len(row["user_id"]) == len(row["session_id"]) == MAX_ATTRIBUTION_CHARS
    assert len(row["target_url"]) == 8192
    assert row["request_path"] == "/" + "a" * (8192 - len("https://x/"))
    assert len(row["properties"]) == MAX_STORED_PROPERTIES
    value = row["properties"]["k" * 256]
    assert len(value) == 10_000
    assert value.startswith("v\ufffd")
    assert "\ud800" not in value
    assert (row["cost"], row["pricing_status"]) == (0, PriceStatus.NO_USAGE)

    stored = store(chdb_executor, [row])[0]
    assert stored["model"] == "m" * 256
    assert len(stored["properties"]) == MAX_STORED_PROPERTIES
    assert (stored["cost"], stored["pricing_status"]) == (0, "no_usage")

    at_the_cap = request_from_helicone(
        {**source, "request_id": str(uuid.uuid4()), "cost": int(MAX_COST_USD) * 10**9},
        organization_id,
        8 * 1024 * 1024,
    ).row
    assert (at_the_cap["cost"], at_the_cap["pricing_status"]) == (10**15, PriceStatus.PRICED)


def test_an_async_log_reports_a_cut_model() -> None:
    body = {
        "providerRequest": {"url": "custom", "json": {"model": "m" * 100_000}, "meta": {}},
        "providerResponse": {"status": 200, "headers": {}, "json": {"usage": {}}},
    }
    logged = record_from_async_log(body, [], "CUSTOM", str(uuid.uuid4()), "", datetime.now(UTC))
    assert logged.reported is not None
    assert logged.reported["model"] == "m" * 256


def test_the_body_reader_takes_what_python_writes_and_refuses_the_rest() -> None:
    assert load_body(b'{"a": "\\ud800x"}') == {"a": "\ud800x"}  # cleaned later
    assert load_body(b'{"n": 99999999999999999999999}')["n"] > 2**64
    for bad in (b"", b"{", b'{"a": "\xff"}', b"[" * 100_000 + b"]" * 100_000):
        with pytest.raises(InvalidAsyncLog, match="the body is not JSON"):
            load_body(bad)


def test_the_collector_pause_nests_and_restores() -> None:
    assert gc.isenabled()
    with collector_paused(10):
        assert gc.isenabled()  # a small body is not worth it
    with collector_paused(2**20):
        assert not gc.isenabled()
        with collector_paused(2**21):
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer reading is still going
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused(2**20):
            pass
        assert not gc.isenabled()  # left off, as it was found
    finally:
        gc.enable()
    with pytest.raises(ValueError, match="bug"), collector_paused(2**20):
        raise ValueError("bug")
    assert gc.isenabled()
