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
from heliograph.analytics.rollup import DIMENSIONS, ROLLUP_COLUMNS, SUMMARIES
from heliograph.analytics.scope import Scope

PAGE_ROWS = 10_000
REQUESTS_IN_RANGE = (
    "request_created_at >= {start:DateTime64(3, 'UTC')}"
    " AND request_created_at < {end:DateTime64(3, 'UTC')}"
)
# The rollup's rows summed again from requests, column for column as its view inserts them.
ROLLUP_KEYS = ("organization_id", "hour", *DIMENSIONS)
ROLLUP_INSERT = (
    f"INSERT INTO request_rollup_hourly ({', '.join(ROLLUP_KEYS)}, {ROLLUP_COLUMNS})"
    " SETTINGS insert_deduplicate = 0"
    f" SELECT organization_id, toStartOfHour(request_created_at) AS hour, {', '.join(DIMENSIONS)},"
    f" {SUMMARIES} FROM request_response"
)
# What a rollup hour must agree with its requests on (rollup column, request expression).
TOTALS = (
    ("requests", "count()"),
    ("cost_nano", "sum(cost)"),
    ("prompt_token_sum", "sum(ifNull(prompt_tokens, 0))"),
    ("completion_token_sum", "sum(ifNull(completion_tokens, 0))"),
    ("cache_read_token_sum", "sum(prompt_cache_read_tokens)"),
    ("cache_write_token_sum", "sum(prompt_cache_write_tokens)"),
    ("reasoning_token_sum", "sum(reasoning_tokens)"),
)
IDENTIFIER = re.compile(r"[A-Za-z0-9_]+")
IN_HOURS = "toStartOfHour(request_created_at) IN {hours:Array(DateTime('UTC'))}"
IN_SLICE = (
    "request_created_at >= {first:DateTime64(3, 'UTC')}"
    " AND request_created_at <= {last:DateTime64(3, 'UTC')}"
)
# The keyset: rows after the last one read. The plain bound beside the tuple comparison lets the
# engine skip the parts and granules before it, so each page reads from its position.
AFTER_ROW = (
    "request_created_at >= {after_at:DateTime64(3, 'UTC')}"
    " AND (request_created_at, request_id) > ({after_at:DateTime64(3, 'UTC')}, {after_id:UUID})"
)


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
    created_at: str  # the row's, as stored: a mutation reads only the slice its rows are in
    cost: int
    status: str


class NewPrices:
    """New prices by request id, in a `Join` table the mutation looks them up in (`joinGet`):
    a mutation carrying them as literals took 80 us a row, this 1 us."""

    def __init__(self, engine: AnalyticsEngine, name: str) -> None:
        self._engine = engine
        self.name = name  # made here: a database identifier and hex digits
        self.rows = 0
        self._slice: tuple[str, str] | None = None  # oldest and newest row added, in order

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
        first = self._slice[0] if self._slice is not None else prices[0].created_at
        self._slice = (first, prices[-1].created_at)

    def apply(self, scope: Scope) -> None:
        """Give the organization's rows that have a new price their cost and status (one
        mutation over the slice of time those rows are in, waited for), then empty the table.
        Rows are added oldest first, so the slice is from the first added to the last."""
        if self._slice is None:
            return
        cost, status = self._look_up("cost"), self._look_up("pricing_status")
        params: dict[str, Any] = {"first": self._slice[0], "last": self._slice[1]}
        sql = (
            f"ALTER TABLE request_response UPDATE cost = {cost}, pricing_status = {status}"
            f" WHERE {scope.bind(params)} AND {IN_SLICE} AND {status} != ''"
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
        self.rows, self._slice = 0, None

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
            conditions.append(AFTER_ROW)
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
            f"{ROLLUP_INSERT} WHERE {scope.clause} AND {IN_HOURS} GROUP BY {', '.join(ROLLUP_KEYS)}"
        )
        self._engine.executor.query(insert, params)

    def rollup_differs(self, scope: Scope, hours: list[str]) -> list[str]:
        """Those of `hours` whose rollup does not hold their requests' count, cost and token sums
        (a request stored while the hour was being rebuilt is counted twice)."""
        params: dict[str, Any] = {"hours": hours}
        summed = ", ".join(f"{expression} AS {column}" for column, expression in TOTALS)
        rolled = ", ".join(f"sum({column}) AS {column}" for column, _ in TOTALS)
        differs = " OR ".join(f"summed.{column} != kept.{column}" for column, _ in TOTALS)
        sql = (
            "SELECT toString(hour) AS hour FROM ("
            f" SELECT toStartOfHour(request_created_at) AS hour, {summed}"
            f" FROM request_response WHERE {scope.bind(params)} AND {IN_HOURS} GROUP BY hour"
            f") AS summed FULL OUTER JOIN (SELECT hour, {rolled} FROM request_rollup_hourly"
            f" WHERE {scope.clause} AND hour IN {{hours:Array(DateTime('UTC'))}} GROUP BY hour"
            f") AS kept USING (hour) WHERE {differs}"
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
