"""`/v1/reports/weekly`: the organization's weekly report (the last seven days beside the week
before), to read, or to e-mail now to its owners and admins."""

from __future__ import annotations

from fastapi import APIRouter

from heliograph.api.deps import Configurer, Reader, ServicesDep
from heliograph.api.envelope import JsonResponse, fail, ok
from heliograph.services.mailer import MailError

router = APIRouter(prefix="/v1/reports", tags=["reports"])


@router.get("/weekly", operation_id="getWeeklyReport")
async def weekly(caller: Reader, services: ServicesDep) -> JsonResponse:
    """The report of the seven days to now, with its e-mail text."""
    report = await services.weekly_reports.build(caller.organization_id)
    return ok(report.as_json())


@router.post("/weekly/send", operation_id="sendWeeklyReport")
async def send_weekly(caller: Configurer, services: ServicesDep) -> JsonResponse:
    """E-mail the report to the organization's owners and admins now: 409 when no SMTP server is
    configured (nothing to retry), 503 when the server fails."""
    if not services.mailer.enabled:
        return fail(409, "no SMTP server is configured (HELIOGRAPH_SMTP_URL)")
    report = await services.weekly_reports.build(caller.organization_id)
    try:
        recipients = await services.weekly_reports.send(report)
    except MailError as error:
        return fail(503, str(error))
    return ok({"recipients": recipients, "report": report.as_json()})
