"""Alert rules as values: the metrics and aggregations a rule may watch, the checks on what a
caller sends (name, threshold, window, channels), the rule for "crossed", and the words of a
notification. Pure: URLs are checked by a function the caller passes (the outbound policy)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from heliograph.domain.errors import InvalidInput

METRICS = ("error_rate", "cost", "latency", "count")
AGGREGATIONS = ("avg", "p50", "p75", "p90", "p95", "p99")
# Where each percentile sits in the rollup's digest (`quantilesTDigestMerge(0.5, …, 0.99)`).
QUANTILE_POSITIONS = {"p50": 1, "p75": 2, "p90": 3, "p95": 4, "p99": 5}
MAX_RULES = 100
MAX_NAME_CHARS = 200
MAX_WINDOW_MINUTES = 1440
MAX_MIN_REQUESTS = 1_000_000_000
MAX_THRESHOLD = 1e15
MAX_CHANNELS = 10
MAX_RECIPIENTS = 20
MAX_EMAIL_CHARS = 254
EMAIL = re.compile(r"[^@\s,;<>\"()\[\]\\]+@[^@\s,;<>\"()\[\]\\]+")
FIRED, RESOLVED = "fired", "resolved"
OK, FIRING = "ok", "firing"
UNITS = {"error_rate": "%", "cost": " USD", "latency": " ms", "count": " requests"}


class AlertError(InvalidInput):
    """An alert rule or channel is refused; the message says which field and why."""

    code = "invalid_alert"


class TooManyAlerts(InvalidInput):
    status = 409
    code = "limit_reached"


@dataclass(frozen=True, slots=True)
class WebhookChannel:
    url: str
    type: str = "webhook"


@dataclass(frozen=True, slots=True)
class EmailChannel:
    to: tuple[str, ...]
    type: str = "email"


Channel = WebhookChannel | EmailChannel


@dataclass(frozen=True, slots=True)
class Measure:
    """What a rule watches: the metric, and for latency how it is summarised."""

    metric: str
    aggregation: str = "avg"


@dataclass(frozen=True, slots=True)
class Reading:
    """A metric over a rule's window: its value (None when no request was seen) and how many
    requests it covers."""

    value: float | None
    request_count: int


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise AlertError("name must be a non-empty string")
    text: str = name.strip()
    if len(text) > MAX_NAME_CHARS or not text.isprintable():
        raise AlertError(f"name must be 1 to {MAX_NAME_CHARS} printable characters")
    return text


def check_measure(metric: Any, aggregation: Any) -> Measure:
    """The metric and aggregation; an aggregation other than `avg` is for latency only."""
    if metric not in METRICS:
        raise AlertError(f"metric must be one of {', '.join(METRICS)}")
    if aggregation is None:
        aggregation = "avg"
    if aggregation not in AGGREGATIONS:
        raise AlertError(f"aggregation must be one of {', '.join(AGGREGATIONS)}")
    if metric != "latency" and aggregation != "avg":
        raise AlertError("aggregation applies to the latency metric only")
    return Measure(metric, aggregation)


def check_threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise AlertError("threshold must be a number")
    try:
        value = float(threshold)
    except OverflowError:  # an integer beyond any float
        raise AlertError(f"threshold must be a finite number from 0 to {MAX_THRESHOLD:g}") from None
    if not math.isfinite(value) or not 0 <= value <= MAX_THRESHOLD:
        raise AlertError(f"threshold must be a finite number from 0 to {MAX_THRESHOLD:g}")
    return value


def check_window(minutes: Any) -> int:
    return _whole(minutes, "window_minutes", 1, MAX_WINDOW_MINUTES)


def check_min_requests(count: Any) -> int:
    return _whole(count, "min_requests", 0, MAX_MIN_REQUESTS)


def _whole(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise AlertError(f"{name} must be a whole number from {low} to {high}")
    return value


def check_channels(raw: Any, check_url: Callable[[str], str]) -> tuple[Channel, ...]:
    """Channels from the caller's JSON; `check_url` refuses a webhook URL it may not call."""
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_CHANNELS:
        raise AlertError(f"channels must be a list of 1 to {MAX_CHANNELS} channels")
    return tuple(_channel(item, index, check_url) for index, item in enumerate(raw))


def _channel(item: Any, index: int, check_url: Callable[[str], str]) -> Channel:
    where = f"channels[{index}]"
    if not isinstance(item, dict):
        raise AlertError(f'{where} must be an object with a "type"')
    kind = item.get("type")
    if kind == "webhook":
        _only(item, {"type", "url"}, where)
        url = item.get("url")
        if not isinstance(url, str):
            raise AlertError(f"{where}.url must be a string")
        try:
            return WebhookChannel(check_url(url))
        except InvalidInput as refused:
            raise AlertError(f"{where}.url: {refused}") from None
    if kind == "email":
        _only(item, {"type", "to"}, where)
        return EmailChannel(_recipients(item.get("to"), where))
    raise AlertError(f'{where}.type must be "webhook" or "email"')


def _only(item: dict[str, Any], names: set[str], where: str) -> None:
    extra = sorted(set(item) - names)
    if extra:
        raise AlertError(f"{where} has unknown field {extra[0]!r}")


def _recipients(to: Any, where: str) -> tuple[str, ...]:
    if not isinstance(to, list) or not 1 <= len(to) <= MAX_RECIPIENTS:
        raise AlertError(f"{where}.to must be a list of 1 to {MAX_RECIPIENTS} addresses")
    found: dict[str, None] = {}
    for address in to:
        if (
            not isinstance(address, str)
            or len(address.strip()) > MAX_EMAIL_CHARS
            or not EMAIL.fullmatch(address.strip())
            or not address.isprintable()
        ):
            shown = address[:60] if isinstance(address, str) else type(address).__name__
            raise AlertError(f"{where}.to: {shown!r} is not an e-mail address")
        found[address.strip()] = None
    return tuple(found)


def channels_to_json(channels: tuple[Channel, ...]) -> list[dict[str, Any]]:
    return [
        {"type": "webhook", "url": c.url}
        if isinstance(c, WebhookChannel)
        else {"type": "email", "to": list(c.to)}
        for c in channels
    ]


def channels_from_json(items: list[dict[str, Any]]) -> tuple[Channel, ...]:
    """Channels as stored (already checked when saved)."""
    return tuple(
        WebhookChannel(item["url"])
        if item["type"] == "webhook"
        else EmailChannel(tuple(item["to"]))
        for item in items
    )


def mask_url(url: str) -> str:
    """A webhook URL as shown: `scheme://host/…` and its last four characters (a Slack URL's
    path is its secret)."""
    parts = urlsplit(url)
    rest = url[len(f"{parts.scheme}://{parts.netloc}") :]
    return f"{parts.scheme}://{parts.netloc}/…{rest[-4:]}" if len(rest) > 1 else url


def shown_channels(channels: tuple[Channel, ...]) -> list[dict[str, Any]]:
    """Channels as the API and the page show them: webhook URLs masked."""
    return [
        {"type": "webhook", "url": mask_url(c.url)}
        if isinstance(c, WebhookChannel)
        else {"type": "email", "to": list(c.to)}
        for c in channels
    ]


def channel_target(channel: Channel) -> str:
    """A channel named in history and logs, without its secret."""
    if isinstance(channel, WebhookChannel):
        return mask_url(channel.url)
    return ", ".join(channel.to)


def is_crossed(reading: Reading, threshold: float, min_requests: int) -> bool:
    """Enough requests, and a value above the threshold."""
    if reading.request_count < min_requests or reading.value is None:
        return False
    return reading.value > threshold


def metric_label(measure: Measure) -> str:
    if measure.metric == "latency":
        return f"latency ({measure.aggregation})"
    return {"error_rate": "error rate", "cost": "cost", "count": "request count"}[measure.metric]


def show_value(metric: str, value: float | None) -> str:
    if value is None:
        return "no data"
    if metric == "cost":
        return f"${value:,.6f}".rstrip("0").rstrip(".")
    if metric == "count":
        return f"{value:,.0f} requests"
    if metric == "latency":
        return f"{value:,.0f} ms"
    return f"{value:.1f}%"


def summary(
    name: str, measure: Measure, event: str, reading: Reading, threshold: float, window: int
) -> str:
    """One line a person reads in Slack or an e-mail's subject."""
    label = metric_label(measure)
    value = show_value(measure.metric, reading.value)
    limit = show_value(measure.metric, threshold)
    if event == FIRED:
        head, relation = f':rotating_light: Alert "{name}" fired', "above"
    else:
        head, relation = f':white_check_mark: Alert "{name}" resolved', "no longer above"
    return (
        f"{head}: {label} was {value} over the last {window} min, {relation} the threshold "
        f"of {limit} ({reading.request_count} requests)."
    )
