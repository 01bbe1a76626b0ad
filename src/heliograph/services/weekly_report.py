"""The weekly report: an organization's last seven days (requests, cost, errors, top models,
each beside the week before) as data and as plain text, e-mailed to its owners and admins once a
week by `serve` when `HELIOGRAPH_WEEKLY_REPORT` is on, or on demand."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from heliograph.appdb import weekly_reports
from heliograph.domain.access import Role
from heliograph.domain.queries import AggregateQuery, TimeRange
from heliograph.services.mailer import Mailer, MailError
from heliograph.services.metrics import MetricsService
from heliograph.services.organizations import OrganizationService
from heliograph.services.periodic import Periodic

log = logging.getLogger("heliograph.weekly_report")
WEEK = timedelta(days=7)
TOP_MODELS = 5
CHECK_EVERY_S = 3600.0  # how often `serve` looks for organizations due their report
RECIPIENT_ROLES = (Role.OWNER, Role.ADMIN)


@dataclass(frozen=True, slots=True)
class ModelLine:
    model: str
    provider: str
    requests: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class Week:
    requests: int
    cost_usd: float
    errors: int
    average_latency_ms: float | None

    @property
    def error_rate(self) -> float:
        return 100.0 * self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class WeeklyReport:
    organization_id: str
    organization_name: str
    start: datetime
    end: datetime
    week: Week
    previous: Week
    top_models: tuple[ModelLine, ...]

    def as_json(self) -> dict[str, Any]:
        shaped = asdict(self)
        shaped["start"], shaped["end"] = self.start.isoformat(), self.end.isoformat()
        shaped["week"]["error_rate"] = self.week.error_rate
        shaped["previous"]["error_rate"] = self.previous.error_rate
        shaped["text"] = report_text(self)
        return shaped


class WeeklyReports:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        metrics: MetricsService,
        organizations: OrganizationService,
        mailer: Mailer,
    ) -> None:
        self._sessions = sessions
        self._metrics = metrics
        self._organizations = organizations
        self._mailer = mailer
        self._schedule = Periodic(
            self._send_due_now, CHECK_EVERY_S, "weekly-reports", "weekly reports failing: %s"
        )

    def start(self) -> None:
        """Send each organization its report once a week from now on (checked hourly)."""
        self._schedule.start()

    async def close(self) -> None:
        await self._schedule.stop()

    async def build(self, organization_id: str, end: datetime | None = None) -> WeeklyReport:
        """The report of the seven days before `end` (default now)."""
        end = end or datetime.now(UTC)
        name = self._organizations.get(organization_id).name
        week, models = await self._week(organization_id, end - WEEK, end, with_models=True)
        previous, _ = await self._week(organization_id, end - 2 * WEEK, end - WEEK)
        return WeeklyReport(organization_id, name, end - WEEK, end, week, previous, models)

    def recipients(self, organization_id: str) -> list[str]:
        members = self._organizations.members(organization_id)
        return [member.email for member in members if member.role in RECIPIENT_ROLES]

    async def send(self, report: WeeklyReport) -> list[str]:
        """E-mail the report to the organization's owners and admins; who it went to."""
        to = self.recipients(report.organization_id)
        subject = f"Heliograph weekly report: {report.organization_name}"
        text = report_text(report)
        for address in to:
            await asyncio.to_thread(self._mailer.send, address, subject, text)
        return to

    async def send_due(self, now: datetime | None = None) -> int:
        """Send every organization whose last report is a week old (or that never had one) its
        report, once: each week is claimed in the app DB first. Organizations with no request
        in either week are skipped but still claimed. How many reports went out."""
        if not self._mailer.enabled:
            return 0
        now = now or datetime.now(UTC)
        sent = 0
        for organization_id, last_sent in self._due(now):
            if not self._claim(organization_id, last_sent, now):
                continue
            report = await self.build(organization_id, now)
            if not (report.week.requests or report.previous.requests):
                continue
            try:
                await self.send(report)
            except MailError as error:
                log.warning("weekly report for %s not sent: %s", organization_id, error)
                continue
            sent += 1
        return sent

    async def _send_due_now(self) -> None:
        await self.send_due()

    def _due(self, now: datetime) -> list[tuple[str, datetime | None]]:
        with self._sessions() as db:
            rows = weekly_reports.due(db, now - WEEK)
        return [(organization_id, last_sent) for organization_id, _, last_sent in rows]

    def _claim(self, organization_id: str, last_sent: datetime | None, now: datetime) -> bool:
        with self._sessions.begin() as db:
            return weekly_reports.claim(db, organization_id, last_sent, now)

    async def _week(
        self, organization_id: str, start: datetime, end: datetime, with_models: bool = False
    ) -> tuple[Week, tuple[ModelLine, ...]]:
        span = TimeRange(_ms(start), _ms(end))
        totals = await self._metrics.totals(organization_id, AggregateQuery(time=span))
        week = Week(
            requests=int(totals["total_requests"]),
            cost_usd=float(totals["total_cost"]),
            errors=int(totals["errors"]),
            average_latency_ms=totals["average_latency"],
        )
        if not with_models:
            return week, ()
        rows = await self._metrics.models(organization_id, AggregateQuery(time=span, limit=100))
        rows.sort(key=lambda row: (-row["total_requests"], -row["cost"]))
        models = tuple(
            ModelLine(row["model"], row["provider"], row["total_requests"], row["cost"])
            for row in rows[:TOP_MODELS]
        )
        return week, models


def report_text(report: WeeklyReport) -> str:
    """The report as the e-mail's plain text."""
    week, previous = report.week, report.previous
    lines = [
        f"{report.organization_name}: {report.start:%Y-%m-%d} to {report.end:%Y-%m-%d} (UTC)",
        "",
        f"Requests  {week.requests:>12,}   {_change(week.requests, previous.requests)}",
        f"Cost      {_usd(week.cost_usd):>12}   {_change(week.cost_usd, previous.cost_usd)}",
        f"Errors    {week.errors:>12,}   {week.error_rate:.1f}% of requests"
        f" (the week before: {previous.error_rate:.1f}%)",
    ]
    if week.average_latency_ms is not None:
        lines.append(f"Latency   {week.average_latency_ms:>10,.0f} ms   average")
    if report.top_models:
        lines += ["", "Top models"]
        lines += [
            f"  {line.model or '(unknown)'} ({line.provider.lower()}): {line.requests:,} requests,"
            f" {_usd(line.cost_usd)}"
            for line in report.top_models
        ]
    return "\n".join(lines) + "\n"


def _change(now: float, before: float) -> str:
    if not before:
        return "(no requests the week before)" if not now else "(new this week)"
    return f"({(now - before) / before * 100:+.0f}% on the week before)"


def _usd(amount: float) -> str:
    return f"${amount:,.2f}" if amount >= 0.01 or amount == 0 else f"${amount:.6f}"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
