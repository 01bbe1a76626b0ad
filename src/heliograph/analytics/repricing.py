"""Re-pricing stored requests: the organization's rows in a time range with the columns a price
is computed from, a mutation setting new costs on the rows whose price changed (looked up in a
table of new prices by request id), and the rebuild
of the hourly rollup's hours that held them (the rollup is kept on insert only, so a mutation
leaves it behind). Every statement takes the organization's `Scope`; every value is bound."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from heliograph.analytics.engine import AnalyticsEngine
from heliograph.analytics.executor import StoreUnavailable
from heliograph.analytics.scope import Scope

PAGE_ROWS = 10_000
REQUESTS_IN_RANGE = (
    "request_created_at >= {start:DateTime64(3, 'UTC')}"
    " AND request_created_at < {end:DateTime64(3, 'UTC')}"
)
# The rollup's SELECT, as its materialized view has it (schema 0009).
ROLLUP_SELECT = """
SELECT
    organization_id,
    toStartOfHour(request_created_at) AS hour,
    provider,
    model,
    status,
    count() AS requests,
    sum(cost) AS cost_nano,
    sum(ifNull(prompt_tokens, 0)) AS prompt_token_sum,
    sum(ifNull(completion_tokens, 0)) AS completion_token_sum,
    sum(prompt_cache_read_tokens) AS cache_read_token_sum,
    sum(prompt_cache_write_tokens) AS cache_write_token_sum,
    sum(reasoning_tokens) AS reasoning_token_sum,
    sum(latency) AS latency_sum,
    sum(ifNull(time_to_first_token, 0)) AS ttft_sum,
    count(time_to_first_token) AS ttft_count,
    countIf(cache_reference_id != toUUID('00000000-0000-0000-0000-000000000000')) AS cache_hits,
    sum(cache_saved_cost) AS saved_cost_nano,
    sum(cache_saved_latency) AS saved_latency_ms,
    uniqCombinedState(nullIf(user_id, '')) AS users,
    quantilesTDigestState(0.5, 0.75, 0.9, 0.95, 0.99)(latency) AS latency_digest,
    quantilesTDigestState(0.5, 0.75, 0.9, 0.95, 0.99)(time_to_first_token) AS ttft_digest,
    quantilesTDigestState(0.5, 0.75, 0.9, 0.95, 0.99)(
        ifNull(prompt_tokens, 0) + ifNull(completion_tokens, 0) + prompt_cache_read_tokens
        + prompt_cache_write_tokens + reasoning_tokens) AS tokens_digest
FROM request_response
"""
IDENTIFIER = re.compile(r"[A-Za-z0-9_]+")
IN_HOURS = "toStartOfHour(request_created_at) IN {hours:Array(DateTime('UTC'))}"


@dataclass(frozen=True, slots=True)
class PricedRow:
    """What a stored row's price is computed from, and the price it has."""

    request_id: str
    created_at: str  # as stored: "2026-01-02 03:04:05.678"
    provider: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    audio_input_tokens: int
    audio_output_tokens: int
    cost: int
    status: str

    @property
    def hour(self) -> str:
        return self.created_at[:13] + ":00:00"


@dataclass(frozen=True, slots=True)
class NewPrice:
    request_id: str
    cost: int
    status: str


class NewPrices:
    """New prices by request id, in a `Join` table the mutation looks them up in (`joinGet`):
    a mutation carrying them as literals took 80 us a row, this 1 us."""

    def __init__(self, engine: AnalyticsEngine, name: str) -> None:
        self._engine = engine
        self.name = name  # made here: a database identifier and hex digits
        self.rows = 0

    def add(self, prices: list[NewPrice]) -> None:
        if not prices:
            return
        rows = b"\n".join(
            orjson.dumps({"request_id": p.request_id, "cost": p.cost, "pricing_status": p.status})
            for p in prices
        )
        # By its own name: the connection's database is the one `name` names.
        self._engine.executor.insert(self.name.split(".")[1], rows, uuid.uuid4().hex)
        self.rows += len(prices)

    def apply(self, scope: Scope, start: str, end: str) -> None:
        """Give the organization's rows of the range that have a new price their cost and status
        (one mutation, waited for), then empty the table."""
        if not self.rows:
            return
        cost, status = self._look_up("cost"), self._look_up("pricing_status")
        params: dict[str, Any] = {"start": start, "end": end}
        sql = (
            f"ALTER TABLE request_response UPDATE cost = {cost}, pricing_status = {status}"
            f" WHERE {scope.bind(params)} AND {REQUESTS_IN_RANGE} AND {status} != ''"
        )
        try:
            self._engine.executor.query(sql, params, {"mutations_sync": 2})
        except StoreUnavailable:
            # A failed mutation is retried by the engine forever, and would keep failing once
            # this table is gone: stop it.
            self._engine.executor.command(
                f"KILL MUTATION WHERE table = 'request_response' AND command LIKE '%{self.name}%'"
            )
            raise
        self._engine.executor.command(f"TRUNCATE TABLE {self.name}")
        self.rows = 0

    def _look_up(self, column: str) -> str:
        """A row's new `column`, by its id ("" or 0 for a row without a new price)."""
        return f"joinGet('{self.name}', '{column}', request_id)"


class Repricing:
    """Blocking calls, for a worker thread: a re-pricing is one long job, not a read."""

    def __init__(self, engine: AnalyticsEngine) -> None:
        self._engine = engine

    def page(
        self, scope: Scope, start: str, end: str, model: str, after: PricedRow | None
    ) -> list[PricedRow]:
        """Up to `PAGE_ROWS` rows of the range after `after`, oldest first; replayed responses
        (nothing spent) are left out. `model` "" means every model; else it is lower case, and a
        trailing `*` makes it a prefix."""
        params: dict[str, Any] = {"start": start, "end": end}
        conditions = [scope.bind(params), REQUESTS_IN_RANGE, "pricing_status != 'cache_hit'"]
        if model.endswith("*"):
            conditions.append("startsWith(lower(model), {model:String})")
            params["model"] = model[:-1]
        elif model:
            conditions.append("lower(model) = {model:String}")
            params["model"] = model
        if after is not None:
            conditions.append(
                "(request_created_at, request_id)"
                " > ({after_at:DateTime64(3, 'UTC')}, {after_id:UUID})"
            )
            params.update(after_at=after.created_at, after_id=after.request_id)
        sql = (
            "SELECT toString(request_id) AS request_id,"
            " toString(request_created_at) AS created_at, provider, model, prompt_tokens,"
            " completion_tokens, prompt_cache_read_tokens, prompt_cache_write_tokens,"
            " reasoning_tokens, prompt_audio_tokens, completion_audio_tokens, cost,"
            " toString(pricing_status) AS status FROM request_response"
            f" WHERE {' AND '.join(conditions)}"
            f" ORDER BY request_created_at, request_id LIMIT {PAGE_ROWS}"
        )
        return [_priced_row(row) for row in self._engine.read_blocking(scope, sql, params)]

    @contextmanager
    def new_prices(self) -> Iterator[NewPrices]:
        """A table of new prices by request id, dropped on exit."""
        rows = self._engine.executor.query("SELECT currentDatabase() AS db", {})
        database = str(rows[0]["db"])
        if not IDENTIFIER.fullmatch(database):
            raise StoreUnavailable("the analytics database's name is not a plain identifier")
        table = NewPrices(self._engine, f"{database}.heliograph_prices_{uuid.uuid4().hex}")
        self._engine.executor.command(
            f"CREATE TABLE {table.name} (request_id UUID, cost UInt64, pricing_status String)"
            " ENGINE = Join(ANY, LEFT, request_id)"
        )
        try:
            yield table
        finally:
            self._engine.executor.command(f"DROP TABLE IF EXISTS {table.name}")

    def rebuild_rollup(self, scope: Scope, hours: list[str]) -> None:
        """The organization's rollup rows of `hours`, summed again from its requests."""
        params: dict[str, Any] = {"hours": hours}
        delete = (
            "ALTER TABLE request_rollup_hourly DELETE"
            f" WHERE {scope.bind(params)} AND hour IN {{hours:Array(DateTime('UTC'))}}"
        )
        self._engine.executor.query(delete, params, {"mutations_sync": 2})
        insert = (
            "INSERT INTO request_rollup_hourly SETTINGS insert_deduplicate = 0"
            f"{ROLLUP_SELECT} WHERE {scope.clause} AND {IN_HOURS}"
            " GROUP BY organization_id, hour, provider, model, status"
        )
        self._engine.executor.query(insert, params)

    def rollup_differs(self, scope: Scope, hours: list[str]) -> list[str]:
        """Those of `hours` whose rollup does not hold their requests' count and cost (a request
        stored while the hour was being rebuilt is counted twice)."""
        params: dict[str, Any] = {"hours": hours}
        sql = (
            "SELECT toString(hour) AS hour FROM ("
            " SELECT toStartOfHour(request_created_at) AS hour, count() AS n, sum(cost) AS c"
            f" FROM request_response WHERE {scope.bind(params)} AND {IN_HOURS} GROUP BY hour"
            ") AS requests FULL OUTER JOIN ("
            " SELECT hour, sum(requests) AS n, sum(cost_nano) AS c FROM request_rollup_hourly"
            f" WHERE {scope.clause} AND hour IN {{hours:Array(DateTime('UTC'))}} GROUP BY hour"
            ") AS rollup USING (hour) WHERE requests.n != rollup.n OR requests.c != rollup.c"
        )
        return [row["hour"] for row in self._engine.read_blocking(scope, sql, params)]


def _priced_row(row: dict[str, Any]) -> PricedRow:
    return PricedRow(
        request_id=row["request_id"],
        created_at=row["created_at"],
        provider=row["provider"],
        model=row["model"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        cache_read_tokens=row["prompt_cache_read_tokens"],
        cache_write_tokens=row["prompt_cache_write_tokens"],
        reasoning_tokens=row["reasoning_tokens"],
        audio_input_tokens=row["prompt_audio_tokens"],
        audio_output_tokens=row["completion_audio_tokens"],
        cost=int(row["cost"]),
        status=row["status"],
    )
