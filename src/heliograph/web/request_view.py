"""The request list's view state, read from and written to the URL, and its filter as Helicone's
`FilterNode` (parsed and checked by `domain.filters.parse_filter`).

The URL carries the whole view, so a reload or a shared link shows the same list:

- `filter=` JSON: a group `{"and": [node, ...]}` or `{"or": [node, ...]}`, or a condition
  `{"field": F, "op": O, "value": V}`, where F is a request column of `domain.filters.COLUMNS`,
  `property:<key>`, `score:<name>` or `cached`, and O an operator that field's kind takes.
- `q=` text that the request or the response body contains (ANDed with the filter).
- `cols=created_at,status,model,...` the shown columns (built-in keys, `property:<key>`,
  `score:<name>`), in order; `sort=<column>&desc=1|0`; `range=24h` (or `range=custom&start=&end=`,
  see `time_range`); `limit=50`; `cursor=` (newest first, keyset) or `offset=` (other sorts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

import orjson

from heliograph.domain.filter_tree import EMPTY_MARKERS, NUMBER_OPS, OPERATORS_BY_KIND, Filter, Kind
from heliograph.domain.filters import COLUMNS, FilterError, parse_filter, show
from heliograph.domain.sorts import RequestSortKey, Sort
from heliograph.web.time_range import DEFAULT_RANGE, Window

REQUEST_TABLE = "request_response_rmt"
PROPERTY_PREFIX = "property:"
SCORE_PREFIX = "score:"
MAX_FILTER_CHARS = 20_000
MAX_GROUP_DEPTH = 8
MAX_COLUMNS = 40
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_OFFSET = 10_000  # other sorts page by offset; beyond this, narrow the filter


@dataclass(frozen=True, slots=True)
class ListColumn:
    """A column the table can show: its URL key, header, sort key (if sortable) and alignment."""

    key: str
    label: str
    sort: RequestSortKey | None = None
    numeric: bool = False


BUILT_IN_COLUMNS: dict[str, ListColumn] = {
    column.key: column
    for column in (
        ListColumn("created_at", "Created", RequestSortKey.CREATED_AT),
        ListColumn("status", "Status", RequestSortKey.STATUS),
        ListColumn("model", "Model", RequestSortKey.MODEL),
        ListColumn("provider", "Provider", RequestSortKey.PROVIDER),
        ListColumn("user", "User", RequestSortKey.USER_ID),
        ListColumn("latency", "Latency", RequestSortKey.LATENCY, numeric=True),
        ListColumn("ttft", "TTFT", RequestSortKey.TIME_TO_FIRST_TOKEN, numeric=True),
        ListColumn("prompt_tokens", "Prompt tokens", RequestSortKey.PROMPT_TOKENS, numeric=True),
        ListColumn(
            "completion_tokens", "Completion tokens", RequestSortKey.COMPLETION_TOKENS, True
        ),
        ListColumn("total_tokens", "Total tokens", RequestSortKey.TOTAL_TOKENS, numeric=True),
        ListColumn("cost", "Cost", RequestSortKey.COST, numeric=True),
        ListColumn("path", "Path"),
        ListColumn("session", "Session"),
        ListColumn("cached", "Cached"),
        ListColumn("request", "Request"),
        ListColumn("response", "Response"),
    )
}
DEFAULT_COLUMNS = (
    "created_at",
    "status",
    "model",
    "user",
    "latency",
    "total_tokens",
    "cost",
    "request",
)
PREVIEW_COLUMNS = frozenset({"request", "response"})
# Labels the filter builder shows for request columns (the rest show their name).
FIELD_LABELS = {
    "request_created_at": "Created at",
    "time_to_first_token": "Time to first token",
    "user_id": "User",
    "request_path": "Path",
    "request_body": "Request body",
    "response_body": "Response body",
}


def column_of(key: str) -> ListColumn:
    """The column a `cols=` key names; a `FilterError` (400) for an unknown one."""
    if key in BUILT_IN_COLUMNS:
        return BUILT_IN_COLUMNS[key]
    for prefix, kind in ((PROPERTY_PREFIX, "property"), (SCORE_PREFIX, "score")):
        name = key.removeprefix(prefix)
        if key.startswith(prefix) and 0 < len(name) <= 200:
            return ListColumn(key, name, numeric=kind == "score")
    raise FilterError(f"unknown column {show(key)} in cols")


@dataclass(frozen=True, slots=True)
class RequestView:
    """Everything the URL says about the list; `query()` writes it back."""

    filter: Any = None  # the URL's filter JSON, already parsed and checked by `tree()`
    search: str = ""
    columns: tuple[str, ...] = DEFAULT_COLUMNS
    sort: str = "created_at"
    descending: bool = True
    range: str = DEFAULT_RANGE
    start: str = ""
    end: str = ""
    limit: int = DEFAULT_LIMIT
    cursor: str = ""
    offset: int = 0

    @property
    def request_sort(self) -> Sort:
        key = BUILT_IN_COLUMNS[self.sort].sort
        assert key is not None  # `read_view` accepts sortable columns only
        return Sort(key, self.descending)

    @property
    def is_newest_first(self) -> bool:
        return self.request_sort.is_newest_first

    @property
    def is_first_page(self) -> bool:
        return not self.cursor and not self.offset

    @property
    def needs_bodies(self) -> bool:
        return bool(PREVIEW_COLUMNS.intersection(self.columns))

    def query(self, **changes: Any) -> str:
        """This view's URL query string, with `changes` applied (paging reset unless given)."""
        changed = replace(self, **{"cursor": "", "offset": 0, **changes})
        params: list[tuple[str, str]] = []
        if changed.filter:
            params.append(("filter", orjson.dumps(changed.filter).decode()))
        if changed.search:
            params.append(("q", changed.search))
        if changed.columns != DEFAULT_COLUMNS:
            params.append(("cols", ",".join(changed.columns)))
        if changed.sort != "created_at" or not changed.descending:
            params += [("sort", changed.sort), ("desc", "1" if changed.descending else "0")]
        params.append(("range", changed.range))
        if changed.range == "custom":
            params += [("start", changed.start), ("end", changed.end)]
        if changed.limit != DEFAULT_LIMIT:
            params.append(("limit", str(changed.limit)))
        if changed.cursor:
            params.append(("cursor", changed.cursor))
        if changed.offset:
            params.append(("offset", str(changed.offset)))
        return urlencode(params)

    def tree(self, window: Window, open_end: bool = False) -> Filter:
        """The filter, the body search and the time range as one checked filter tree."""
        nodes = [helicone_node(self.filter)] if self.filter else []
        if self.search:
            nodes.append(search_node(self.search))
        nodes.append(_leaf("request_created_at", "gte", window.start.isoformat()))
        if not open_end or window.name == "custom":
            nodes.append(_leaf("request_created_at", "lte", window.end.isoformat()))
        return parse_filter(joined("and", nodes))


def read_view(params: Mapping[str, str]) -> RequestView:
    """The view a URL's query parameters describe; a `FilterError` (400) saying what is wrong."""
    raw_filter = params.get("filter", "")
    columns = _columns(params.get("cols", ""))
    sort = params.get("sort") or "created_at"
    if sort not in BUILT_IN_COLUMNS or BUILT_IN_COLUMNS[sort].sort is None:
        sortable = ", ".join(k for k, c in BUILT_IN_COLUMNS.items() if c.sort is not None)
        raise FilterError(f"cannot sort by {show(sort)}; sort by one of {sortable}")
    view = RequestView(
        filter=read_filter(raw_filter) if raw_filter else None,
        search=params.get("q", "").strip(),
        columns=columns,
        sort=sort,
        descending=params.get("desc", "1") != "0",
        range=params.get("range") or DEFAULT_RANGE,
        start=params.get("start", ""),
        end=params.get("end", ""),
        limit=_integer(params.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        cursor=params.get("cursor", ""),
        offset=_integer(params.get("offset"), "offset", 0, 0, MAX_OFFSET),
    )
    if view.search:
        search_node(view.search)  # checks its length and text now, with a clear message
    return view


def read_filter(text: str) -> Any:
    """The URL's filter JSON, checked against the grammar (fields, operators, nesting)."""
    if len(text) > MAX_FILTER_CHARS:
        raise FilterError(f"the filter takes at most {MAX_FILTER_CHARS} characters")
    try:
        node = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise FilterError(f"the filter is not valid JSON ({error})") from None
    parse_filter(helicone_node(node))  # every field, operator and value checked here
    return node


def helicone_node(node: Any, depth: int = 0) -> Any:
    """The URL grammar's node as Helicone's `FilterNode` (groups become balanced branches, so
    a long list stays shallow)."""
    if depth > MAX_GROUP_DEPTH:
        raise FilterError(f"the filter nests groups deeper than {MAX_GROUP_DEPTH} levels")
    if not isinstance(node, dict):
        raise FilterError(f"a filter node must be an object, got {show(node)}")
    if set(node) in ({"and"}, {"or"}):
        ((operator, children),) = node.items()
        if not isinstance(children, list):
            raise FilterError(f'"{operator}" takes a list of conditions, got {show(children)}')
        return joined(operator, [helicone_node(child, depth + 1) for child in children])
    if set(node) != {"field", "op", "value"}:
        raise FilterError(
            'a filter node is {"and": [...]}, {"or": [...]} or '
            f'{{"field", "op", "value"}}, got {show(node)}'
        )
    field, op, value = node["field"], node["op"], node["value"]
    if not isinstance(field, str) or not isinstance(op, str):
        raise FilterError(f"a condition's field and op are strings, got {show(node)}")
    return _leaf(field, op, value)


def _leaf(field: str, op: str, value: Any) -> Any:
    if value is None and op in ("equals", "not-equals"):
        value = EMPTY_MARKERS[0]  # "no value", as Helicone spells it (a link to a missing model)
    if field.startswith(PROPERTY_PREFIX):
        return {"properties": {field.removeprefix(PROPERTY_PREFIX): {op: value}}}
    if field.startswith(SCORE_PREFIX):
        return {REQUEST_TABLE: {"scores": {field.removeprefix(SCORE_PREFIX): {op: value}}}}
    if field == "cached":
        flag = {"true": True, "false": False}.get(value, value) if isinstance(value, str) else value
        return {REQUEST_TABLE: {"cached": {op: flag}}}
    if field not in COLUMNS:
        raise FilterError(f"unknown filter field {show(field)}")
    return {REQUEST_TABLE: {field: {op: value}}}


def search_node(text: str) -> Any:
    """Request body or response body contains `text`."""
    return joined(
        "or", [_leaf("request_body", "contains", text), _leaf("response_body", "contains", text)]
    )


def joined(operator: str, nodes: list[Any]) -> Any:
    """`nodes` joined by `operator` as a balanced binary tree; "all" for none."""
    if not nodes:
        return "all"
    if len(nodes) == 1:
        return nodes[0]
    middle = len(nodes) // 2
    left, right = joined(operator, nodes[:middle]), joined(operator, nodes[middle:])
    return {"left": left, "operator": operator, "right": right}


def builder_fields(
    property_keys: Iterable[str], score_names: Iterable[str]
) -> list[dict[str, Any]]:
    """What the filter builder offers: each field's name, label, kind and operators."""
    fields: list[dict[str, Any]] = [
        {
            "name": name,
            "label": FIELD_LABELS.get(name, name.replace("_", " ").capitalize()),
            "kind": column.kind.value,
            "ops": [str(op) for op in OPERATORS_BY_KIND[column.kind]],
        }
        for name, column in COLUMNS.items()
    ]
    fields.append({"name": "cached", "label": "Cached", "kind": "bool", "ops": ["equals"]})
    text_ops = [str(op) for op in OPERATORS_BY_KIND[Kind.TEXT]]
    for key in property_keys:
        label = f"Property: {key}"
        fields.append(
            {"name": PROPERTY_PREFIX + key, "label": label, "kind": "text", "ops": text_ops}
        )
    for name in score_names:
        label = f"Score: {name}"
        fields.append(
            {
                "name": SCORE_PREFIX + name,
                "label": label,
                "kind": "number",
                "ops": [str(op) for op in NUMBER_OPS],
            }
        )
    return fields


def count_conditions(node: Any) -> int:
    """How many conditions a (checked) URL filter holds."""
    if not isinstance(node, dict):
        return 0
    children = node.get("and", node.get("or"))
    if isinstance(children, list):
        return sum(count_conditions(child) for child in children)
    return 1


def _columns(text: str) -> tuple[str, ...]:
    if not text:
        return DEFAULT_COLUMNS
    keys = tuple(dict.fromkeys(key.strip() for key in text.split(",") if key.strip()))
    if not keys or len(keys) > MAX_COLUMNS:
        raise FilterError(f"cols takes 1 to {MAX_COLUMNS} column names")
    for key in keys:
        column_of(key)
    return keys


def _integer(text: str | None, name: str, default: int, low: int, high: int) -> int:
    if not text:
        return default
    # ASCII digits only ("²" is a digit to isdigit() but not to int()), and few of them: int()
    # refuses more than 4,300.
    if not (text.isascii() and text.isdigit()) or len(text) > 12 or not low <= int(text) <= high:
        raise FilterError(f"{name} takes a whole number from {low} to {high}, got {show(text)}")
    return int(text)
