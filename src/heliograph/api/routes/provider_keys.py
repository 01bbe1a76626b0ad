"""`/v1/api-keys`: the provider-key vault and proxy keys (Helicone's shapes). A provider key's
secret goes in and never comes out (`providerKeyPreview` shows its last four characters); a
proxy key is shown once. Every route needs a key manager. Plain `def` routes: FastAPI runs them
on its thread pool, so app DB calls never block the event loop."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from heliograph.api.deps import KeyManager, ServicesDep, actor_of
from heliograph.api.envelope import JsonResponse, ok
from heliograph.services.provider_keys import (
    MAX_NAME_CHARS,
    MAX_SECRET_CHARS,
    ProviderKeyInfo,
    ProxyKeyInfo,
    ProxyLimits,
)

router = APIRouter(prefix="/v1/api-keys", tags=["provider-keys"])
# Generous caps for the schema; the service says exactly what it accepts.
NAME = Field(max_length=MAX_NAME_CHARS * 2)
SECRET = Field(max_length=MAX_SECRET_CHARS * 2)


class ProviderKeyBody(BaseModel):
    providerName: str = Field(max_length=64)
    providerKey: str = SECRET
    providerKeyName: str = NAME


class ProviderKeyPatch(BaseModel):
    providerKey: str | None = Field(default=None, max_length=MAX_SECRET_CHARS * 2)
    providerKeyName: str | None = Field(default=None, max_length=MAX_NAME_CHARS * 2)


class ProxyLimitsBody(BaseModel):
    spendLimitUsd: float | None = None
    spendPeriod: Literal["day", "month"] | None = None
    requestLimit: int | None = None
    requestWindowSeconds: int | None = None


class ProxyKeyBody(BaseModel):
    proxyKeyName: str = NAME
    providerKeyId: str = Field(max_length=64)
    limits: ProxyLimitsBody | None = None


def _provider_key(info: ProviderKeyInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "providerName": info.provider_name,
        "providerKeyName": info.name,
        "providerKeyPreview": info.preview,
        "createdAt": info.created_at.isoformat(),
        "updatedAt": info.updated_at.isoformat(),
    }


def _limits(limits: ProxyLimits) -> dict[str, Any] | None:
    if limits.empty:
        return None
    return {
        "spendLimitUsd": limits.spend_limit_usd,
        "spendPeriod": limits.spend_period,
        "requestLimit": limits.request_limit,
        "requestWindowSeconds": limits.request_window_s,
    }


def _proxy_key(info: ProxyKeyInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "proxyKeyName": info.name,
        "providerKeyId": info.provider_key_id,
        "keyPrefix": info.prefix,
        "limits": _limits(info.limits),
        "createdAt": info.created_at.isoformat(),
        "revokedAt": None if info.revoked_at is None else info.revoked_at.isoformat(),
    }


@router.post("/provider-key", operation_id="createProviderKey", status_code=201)
def create_provider_key(
    body: ProviderKeyBody, request: Request, caller: KeyManager, services: ServicesDep
) -> JsonResponse:
    info = services.provider_keys.create(
        caller.organization_id,
        body.providerName,
        body.providerKey,
        body.providerKeyName,
        actor_of(request, caller),
    )
    return ok(_provider_key(info), status_code=201)


@router.get("/provider-keys", operation_id="listProviderKeys")
def list_provider_keys(caller: KeyManager, services: ServicesDep) -> JsonResponse:
    return ok(
        [_provider_key(info) for info in services.provider_keys.list_keys(caller.organization_id)]
    )


@router.get("/provider-key/{key_id}", operation_id="getProviderKey")
def get_provider_key(key_id: str, caller: KeyManager, services: ServicesDep) -> JsonResponse:
    return ok(_provider_key(services.provider_keys.get(caller.organization_id, key_id)))


@router.patch("/provider-key/{key_id}", operation_id="updateProviderKey")
def update_provider_key(
    key_id: str,
    body: ProviderKeyPatch,
    request: Request,
    caller: KeyManager,
    services: ServicesDep,
) -> JsonResponse:
    info = services.provider_keys.update(
        caller.organization_id,
        key_id,
        body.providerKeyName,
        body.providerKey,
        actor_of(request, caller),
    )
    services.proxy_keys.forget()  # this process's gateway takes the new secret at once
    return ok(_provider_key(info))


@router.delete("/provider-key/{key_id}", operation_id="deleteProviderKey")
def delete_provider_key(
    key_id: str, request: Request, caller: KeyManager, services: ServicesDep
) -> JsonResponse:
    services.provider_keys.delete(caller.organization_id, key_id, actor_of(request, caller))
    services.proxy_keys.forget()
    return ok({"deleted": key_id})


@router.post("/proxy-key", operation_id="createProxyKey", status_code=201)
def create_proxy_key(
    body: ProxyKeyBody, request: Request, caller: KeyManager, services: ServicesDep
) -> JsonResponse:
    given = body.limits or ProxyLimitsBody()
    limits = ProxyLimits(
        given.spendLimitUsd, given.spendPeriod, given.requestLimit, given.requestWindowSeconds
    )
    created = services.provider_keys.create_proxy_key(
        caller.organization_id,
        body.proxyKeyName,
        body.providerKeyId,
        limits,
        actor_of(request, caller),
    )
    return ok({**_proxy_key(created.info), "proxyKey": created.proxy_key}, status_code=201)


@router.get("/proxy-keys", operation_id="listProxyKeys")
def list_proxy_keys(caller: KeyManager, services: ServicesDep) -> JsonResponse:
    keys = services.provider_keys.list_proxy_keys(caller.organization_id)
    return ok([_proxy_key(info) for info in keys])


@router.delete("/proxy-key/{key_id}", operation_id="deleteProxyKey")
def delete_proxy_key(
    key_id: str, request: Request, caller: KeyManager, services: ServicesDep
) -> JsonResponse:
    services.provider_keys.revoke_proxy_key(
        caller.organization_id, key_id, actor_of(request, caller)
    )
    services.proxy_keys.forget()
    return ok({"deleted": key_id})
