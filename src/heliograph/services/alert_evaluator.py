"""`AlertEvaluator`: every `alert_interval_s`, each enabled rule's metric over its window is read
from the analytics store; a rule that becomes crossed fires once, one that stops being crossed
resolves once (a compare-and-set on its state, so two API processes never both notify), and
each transition is a history line and a notification on every channel, sent concurrently and
within a deadline so a slow channel holds up nothing else."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from heliograph.analytics.alert_metrics import AlertMetrics
from heliograph.domain import alerts as rules
from heliograph.domain.alerts import Channel, EmailChannel, Reading, WebhookChannel
from heliograph.domain.errors import InvalidInput
from heliograph.services.alerts import AlertRule, AlertService
from heliograph.services.mailer import Mailer, MailError
from heliograph.services.outbound import OutboundPolicy
from heliograph.services.periodic import Periodic

log = logging.getLogger("heliograph.alerts")
WEBHOOK_TIMEOUT_S = 10.0
WEBHOOK_ATTEMPTS = 3  # the first and two quick retries
RETRY_PAUSE_S = 0.5
CHANNEL_DEADLINE_S = 35.0  # every attempt of one channel, with its pauses
RULES_AT_ONCE = 8  # rules read and notified concurrently within one tick


@dataclass(frozen=True, slots=True)
class Transition:
    """What one evaluation changed: a rule fired or resolved, and who was told."""

    alert_id: str
    event: str
    reading: Reading
    notifications: list[dict[str, Any]]


class AlertEvaluator:
    def __init__(
        self,
        alerts: AlertService,
        metrics: AlertMetrics,
        mailer: Mailer,
        policy: OutboundPolicy,
        interval_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._alerts = alerts
        self._metrics = metrics
        self._mailer = mailer
        self._policy = policy
        self._clock = clock
        self._periodic = Periodic(
            self._tick, interval_s, "alert-evaluator", "evaluating alerts failed: %s"
        )

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def _tick(self) -> None:
        await self.evaluate_now()

    async def evaluate_now(self) -> list[Transition]:
        """Evaluate every enabled rule once; the transitions this call made."""
        found = await asyncio.to_thread(self._alerts.enabled_rules)
        slots = asyncio.Semaphore(RULES_AT_ONCE)

        async def one(rule: AlertRule) -> Transition | None:
            async with slots:
                return await self._evaluate(rule)

        results = await asyncio.gather(*(one(rule) for rule in found))
        return [result for result in results if result is not None]

    async def _evaluate(self, rule: AlertRule) -> Transition | None:
        """One rule; any failure is logged and the rule is tried again at the next tick."""
        try:
            reading = await self._read(rule)
        except Exception as error:
            log.warning("alert %s: reading its metric failed: %s", rule.id, error)
            return None
        try:
            return await self._settle(rule, reading)
        except Exception:
            log.exception("alert %s: recording its state failed", rule.id)
            return None

    async def _read(self, rule: AlertRule) -> Reading:
        end_ms = int(self._clock() * 1000) + 1  # the window includes this very moment
        start_ms = end_ms - rule.window_minutes * 60_000
        return await self._metrics.reading(
            rule.organization_id, rule.tree, rule.measure, start_ms, end_ms
        )

    async def _settle(self, rule: AlertRule, reading: Reading) -> Transition | None:
        crossed = rules.is_crossed(reading, rule.threshold, rule.min_requests)
        if crossed == (rule.state == rules.FIRING):
            await asyncio.to_thread(self._alerts.note_reading, rule.id, reading.value)
            return None
        event = rules.FIRED if crossed else rules.RESOLVED
        event_id = await asyncio.to_thread(self._alerts.transition, rule, event, reading)
        if event_id is None:
            return None  # another process moved it first, and notifies
        outcomes = await self._notify(rule, event, reading)
        await asyncio.to_thread(self._alerts.set_notifications, event_id, outcomes)
        log.info("alert %s %s (value %s)", rule.id, event, reading.value)
        return Transition(rule.id, event, reading, outcomes)

    async def _notify(self, rule: AlertRule, event: str, reading: Reading) -> list[dict[str, Any]]:
        text = rules.summary(
            rule.name, rule.measure, event, reading, rule.threshold, rule.window_minutes
        )
        payload = self._payload(rule, event, reading, text)
        sends = [self._send(channel, payload, text) for channel in rule.channels]
        return list(await asyncio.gather(*sends))

    def _payload(self, rule: AlertRule, event: str, reading: Reading, text: str) -> dict[str, Any]:
        """Slack's `text`, and the structured fields other receivers read."""
        return {
            "text": text,
            "alert": {
                "id": rule.id,
                "name": rule.name,
                "metric": rule.measure.metric,
                "aggregation": rule.measure.aggregation,
                "threshold": rule.threshold,
                "window_minutes": rule.window_minutes,
            },
            "event": event,
            "value": reading.value,
            "request_count": reading.request_count,
            "organization_id": rule.organization_id,
            "at": datetime.fromtimestamp(self._clock(), UTC).isoformat(timespec="milliseconds"),
        }

    async def _send(self, channel: Channel, payload: dict[str, Any], text: str) -> dict[str, Any]:
        outcome: dict[str, Any] = {"type": channel.type, "target": rules.channel_target(channel)}
        try:
            async with asyncio.timeout(CHANNEL_DEADLINE_S):
                if isinstance(channel, WebhookChannel):
                    outcome.update(await self._post(channel.url, payload))
                else:
                    outcome.update(await self._mail(channel, payload, text))
        except TimeoutError:
            outcome.update(ok=False, error=f"no answer within {CHANNEL_DEADLINE_S:.0f} s")
        return outcome

    async def _post(self, url: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            url = self._policy.check(url)  # the operator's list may have changed since saving
        except InvalidInput as refused:
            return {"ok": False, "error": str(refused), "attempts": 0}
        error, status = "", None
        async with self._policy.session(WEBHOOK_TIMEOUT_S) as session:
            for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
                try:
                    async with session.post(url, json=payload, allow_redirects=False) as answer:
                        status = answer.status
                        if 200 <= status < 300:
                            return {"ok": True, "status": status, "attempts": attempt}
                        error = f"answered {status}"
                except (aiohttp.ClientError, OSError, TimeoutError) as failure:
                    error = f"{type(failure).__name__}: {failure}"[:300]
                if attempt < WEBHOOK_ATTEMPTS:
                    await asyncio.sleep(RETRY_PAUSE_S * attempt)
        return {"ok": False, "status": status, "error": error, "attempts": WEBHOOK_ATTEMPTS}

    async def _mail(
        self, channel: EmailChannel, payload: dict[str, Any], text: str
    ) -> dict[str, Any]:
        if not self._mailer.enabled:
            return {"ok": False, "error": "no SMTP server is configured (HELIOGRAPH_SMTP_URL)"}
        subject = f"[Heliograph] {_plain(text)}"[:200]
        body = _mail_text(payload, text)
        try:
            await asyncio.to_thread(self._mailer.send, ", ".join(channel.to), subject, body)
        except MailError as failure:
            return {"ok": False, "error": str(failure)}
        return {"ok": True}


def _mail_text(payload: dict[str, Any], text: str) -> str:
    alert = payload["alert"]
    lines = [
        _plain(text),
        "",
        f"Alert:      {alert['name']} ({alert['id']})",
        f"Event:      {payload['event']}",
        f"Metric:     {alert['metric']}"
        + (f" ({alert['aggregation']})" if alert["metric"] == "latency" else ""),
        f"Value:      {payload['value']}",
        f"Threshold:  {alert['threshold']}",
        f"Window:     {alert['window_minutes']} min",
        f"Requests:   {payload['request_count']}",
        f"At:         {payload['at']}",
    ]
    return "\n".join(lines) + "\n"


def _plain(text: str) -> str:
    """The summary without Slack's leading emoji code."""
    return text.split(": ", 1)[1] if text.startswith(":") else text
