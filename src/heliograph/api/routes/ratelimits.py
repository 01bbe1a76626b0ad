"""`/v1/rate-limits`: an organization's rate-limit rules, each change in the audit log. Plain `def`
routes: FastAPI runs them on its thread pool, so app DB calls never block the event loop."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from heliograph.api.deps import Configurer, Reader, ServicesDep, actor_of
from heliograph.api.envelope import JsonResponse, fail, ok
from heliograph.api.schemas import RateLimitRuleBody
from heliograph.domain.access import Caller
from heliograph.domain.ratelimit import InvalidPolicy
from heliograph.services.container import Services
from heliograph.services.ratelimits import RateLimitRule, RuleInput

router = APIRouter(prefix="/v1/rate-limits", tags=["rate-limits"])


def _shape(rule: RateLimitRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "quota": rule.quota,
        "window_seconds": rule.window_seconds,
        "unit": rule.unit,
        "segment": rule.segment,
        "policy": rule.policy.header(),
        "created_at": rule.created_at.isoformat(),
    }


def _input(body: RateLimitRuleBody) -> RuleInput:
    return RuleInput(body.name, body.quota, body.window_seconds, body.unit, body.segment)


def _changed(
    services: Services, request: Request, caller: Caller, action: str, rule_id: str, policy: str
) -> None:
    """The rules are read again by every process, and the change is in the audit log."""
    services.rule_source.forget(caller.organization_id)
    details = {"policy": policy} if policy else {}
    services.audit.record(
        actor_of(request, caller), action, caller.organization_id, ("rate_limit", rule_id), details
    )


@router.get("", operation_id="listRateLimits")
def list_rules(caller: Reader, services: ServicesDep) -> JsonResponse:
    return ok([_shape(rule) for rule in services.rules.list(caller.organization_id)])


@router.post("", operation_id="createRateLimit")
def create_rule(
    body: RateLimitRuleBody, request: Request, caller: Configurer, services: ServicesDep
) -> JsonResponse:
    try:
        rule = services.rules.create(caller.organization_id, _input(body))
    except InvalidPolicy as invalid:
        return fail(400, str(invalid))
    _changed(services, request, caller, "rate_limit.create", rule.id, rule.policy.header())
    return ok(_shape(rule), status_code=201)


@router.put("/{rule_id}", operation_id="updateRateLimit")
def update_rule(
    rule_id: str,
    body: RateLimitRuleBody,
    request: Request,
    caller: Configurer,
    services: ServicesDep,
) -> JsonResponse:
    try:
        rule = services.rules.update(caller.organization_id, rule_id, _input(body))
    except InvalidPolicy as invalid:
        return fail(400, str(invalid))
    if rule is None:
        return fail(404, f"no rate limit {rule_id}")
    _changed(services, request, caller, "rate_limit.update", rule.id, rule.policy.header())
    return ok(_shape(rule))


@router.delete("/{rule_id}", operation_id="deleteRateLimit")
def delete_rule(
    rule_id: str, request: Request, caller: Configurer, services: ServicesDep
) -> JsonResponse:
    if not services.rules.delete(caller.organization_id, rule_id):
        return fail(404, f"no rate limit {rule_id}")
    _changed(services, request, caller, "rate_limit.delete", rule_id, "")
    return ok({"deleted": rule_id})
