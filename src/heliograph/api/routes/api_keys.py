"""`/v1/api-keys`: an organization's API keys over REST, in Helicone's shapes. A new key is shown
once; listings carry its visible prefix, never its hash. A deleted key is refused at once by this
process and within seconds by every other (their key caches re-check). App DB calls run on
FastAPI's thread pool, so they never block the event loop."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from heliograph.api.deps import KeyManager, ServicesDep, actor_of
from heliograph.api.envelope import JsonResponse, fail, ok
from heliograph.api.schemas import StrictBody
from heliograph.domain.access import KeyPermissions, permissions_from
from heliograph.domain.errors import InvalidInput
from heliograph.domain.filters import show
from heliograph.services.keys import KeyInfo

router = APIRouter(prefix="/v1/api-keys", tags=["api-keys"])

MAX_NAME_CHARS = 200
KeyName = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]
KeyId = Annotated[str, Path(min_length=1, max_length=64)]


class NewApiKeyBody(StrictBody):
    api_key_name: KeyName
    key_permissions: Annotated[str, Field(max_length=8)] = KeyPermissions.READ_WRITE.value


class RenameApiKeyBody(StrictBody):
    api_key_name: KeyName


def _name(text: str) -> str:
    name = text.strip()
    if not name:
        raise InvalidInput("api_key_name cannot be blank")
    if not name.isprintable():
        raise InvalidInput("api_key_name must be printable text")
    return name


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds")


def _shape(key: KeyInfo) -> dict[str, Any]:
    return {
        "id": key.key_id,
        "api_key_name": key.name,
        "key_permissions": key.permissions.value,
        "created_at": _iso(key.created_at),
        "last_used_at": _iso(key.last_used_at),
        "prefix": key.prefix,
    }


@router.get("", operation_id="listApiKeys")
def list_api_keys(caller: KeyManager, services: ServicesDep) -> JsonResponse:
    """The organization's keys that are not deleted, oldest first."""
    keys = services.keys.list_keys(caller.organization_id, active_only=True)
    return ok([_shape(key) for key in keys])


@router.post("", operation_id="createApiKey", status_code=201)
def create_api_key(
    body: NewApiKeyBody, request: Request, caller: KeyManager, services: ServicesDep
) -> JsonResponse:
    """A new key with `key_permissions` rw (read and write), r (read only) or w (log and send
    feedback only); `apiKey` is shown in this response only."""
    created = services.keys.create_key(
        caller.organization_id,
        _name(body.api_key_name),
        permissions_from(body.key_permissions),
        user_id=caller.user_id,
        actor=actor_of(request, caller),
    )
    return ok({"id": created.key_id, "apiKey": created.api_key}, status_code=201)


@router.patch("/{key_id}", operation_id="renameApiKey")
def rename_api_key(
    key_id: KeyId,
    body: RenameApiKeyBody,
    request: Request,
    caller: KeyManager,
    services: ServicesDep,
) -> JsonResponse:
    actor = actor_of(request, caller)
    renamed = services.keys.rename_key(
        caller.organization_id, key_id, _name(body.api_key_name), actor
    )
    if renamed is None:
        return fail(404, f"no API key {show(key_id)}")
    return ok(_shape(renamed))


@router.delete("/{key_id}", operation_id="deleteApiKey")
async def delete_api_key(
    key_id: KeyId, request: Request, caller: KeyManager, services: ServicesDep
) -> JsonResponse:
    """Revoke the key: this process refuses it at once, every other within seconds."""
    actor = actor_of(request, caller)
    revoke = services.keys.revoke_key
    if not await run_in_threadpool(revoke, caller.organization_id, key_id, actor):
        return fail(404, f"no API key {show(key_id)}")
    services.verifier.forget_key(key_id)  # on the event loop, which owns the verifier
    return ok({"deleted": key_id})
