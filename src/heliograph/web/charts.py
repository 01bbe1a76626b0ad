"""Chart specs for charts.js: plain data (times, named series, a unit) that the page embeds as
JSON and the browser draws with plotly.js. Nothing here knows about Plotly's own options."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

Unit = Literal["count", "usd", "ms", "tokens", "percent"]


def series_chart(
    points: Iterable[Mapping[str, Any]],
    fields: Mapping[str, str],
    unit: Unit,
    kind: Literal["bar", "line"] = "line",
    stacked: bool = False,
) -> dict[str, Any]:
    """One trace per `fields` entry (point field -> legend name) over the points' `time`."""
    rows = list(points)
    return {
        "kind": kind,
        "unit": unit,
        "stacked": stacked,
        "x": [row["time"] for row in rows],
        "series": [
            {"name": name, "y": [row.get(field) for row in rows]} for field, name in fields.items()
        ],
    }


def ranking_chart(labels: list[str], values: list[float], unit: Unit) -> dict[str, Any]:
    """Horizontal bars, largest first (top models, providers, property values)."""
    return {"kind": "ranking", "unit": unit, "labels": labels, "values": values}
