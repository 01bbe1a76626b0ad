"""`/v1/prompt-2025`: prompts, their `major.minor` versions and the environments they are
deployed to, in Helicone's Prompts 2025 paths and shapes (`Prompt2025`, `Prompt2025Version`).
Reads need READ, changes WRITE. A version carries its body inline (`prompt_body`) where Helicone
links to a bucket, and `GET .../{promptVersionId}/prompt-body` answers the body itself. Plain
`def` routes run on FastAPI's thread pool, so app DB calls never block the event loop."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import Field, StrictBool

from heliograph.api.deps import Reader, ServicesDep, Writer, actor_of
from heliograph.api.envelope import JsonResponse, fail, ok
from heliograph.api.schemas import StrictBody
from heliograph.domain.prompts import DEFAULT_ENVIRONMENT, MAX_ENVIRONMENT_CHARS, MAX_ID_CHARS
from heliograph.services.container import Services
from heliograph.services.prompt_links import PromptBodyLinks
from heliograph.services.prompts import (
    MAX_COMMIT_CHARS,
    MAX_NAME_CHARS,
    MAX_PAGE_SIZE,
    PromptInfo,
    PromptVersionInfo,
)
from heliograph.services.requests import canonical_id

router = APIRouter(prefix="/v1/prompt-2025", tags=["prompts"])

ID_PATTERN = r"^[A-Za-z0-9_-]+$"  # prompt ids (six characters) and version ids (UUIDs)
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS, pattern=ID_PATTERN)]
PromptId = Annotated[
    str, Path(alias="promptId", min_length=1, max_length=MAX_ID_CHARS, pattern=ID_PATTERN)
]
VersionId = Annotated[
    str, Path(alias="promptVersionId", min_length=1, max_length=MAX_ID_CHARS, pattern=ID_PATTERN)
]
# The service trims, drops blanks and repeats, then holds tags and names to their exact caps.
Tags = Annotated[list[Annotated[str, Field(max_length=256)]], Field(max_length=100)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS * 2)]
Environment = Annotated[str, Field(min_length=1, max_length=MAX_ENVIRONMENT_CHARS)]
PromptBody = Annotated[Any, Field(description="an OpenAI chat-completion request")]


class CreateBody(StrictBody):
    name: Name
    tags: Tags = []
    promptBody: PromptBody


class UpdateBody(StrictBody):
    promptId: Id
    promptVersionId: Id = Field(description="the version the new one is made from")
    newMajorVersion: StrictBool = False
    commitMessage: Annotated[str, Field(max_length=MAX_COMMIT_CHARS)] = ""
    environment: Environment | None = None
    promptBody: PromptBody


class QueryBody(StrictBody):
    search: Annotated[str, Field(max_length=MAX_NAME_CHARS)] = ""
    tagsFilter: Tags = []
    page: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    pageSize: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 100


class VersionBody(StrictBody):
    promptVersionId: Id


class PromptBodyQuery(StrictBody):
    promptId: Id


class VersionsBody(StrictBody):
    promptId: Id
    majorVersion: Annotated[int, Field(ge=0, le=1_000_000)] | None = None


class EnvironmentBody(StrictBody):
    promptId: Id
    environment: Environment


class DeployBody(StrictBody):
    promptId: Id
    promptVersionId: Id
    environment: Environment


class RenameBody(StrictBody):
    name: Name


class TagsBody(StrictBody):
    tags: Tags


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _prompt(prompt: PromptInfo) -> dict[str, Any]:
    return {
        "id": prompt.id,
        "name": prompt.name,
        "tags": prompt.tags,
        "created_at": _iso(prompt.created_at),
        "updated_at": _iso(prompt.updated_at),
        "environments": prompt.environments,
        "version_count": prompt.version_count,
    }


def _versions(
    services: Services, organization_id: str, versions: list[PromptVersionInfo]
) -> list[dict[str, Any]]:
    """Versions in Helicone's shape, each with its body inline and a link to it (`s3_url`)."""
    links = PromptBodyLinks(services.vault, services.settings.resolved_public_url)
    return [
        {**_version(version), "s3_url": links.url(organization_id, version.id)}
        for version in versions
    ]


def _version(version: PromptVersionInfo) -> dict[str, Any]:
    return {
        "id": version.id,
        "model": version.model,
        "prompt_id": version.prompt_id,
        "major_version": version.major_version,
        "minor_version": version.minor_version,
        "commit_message": version.commit_message,
        "environments": version.environments,
        "created_at": _iso(version.created_at),
        "created_by": version.created_by,
        "variables": [{"name": v.name, "type": v.type} for v in version.variables],
        "prompt_body": version.body,
    }


def _no_prompt(prompt_id: str) -> JsonResponse:
    return fail(404, f"no prompt {prompt_id}")


# Changes


@router.post("", operation_id="createPrompt2025", status_code=201)
def create_prompt(
    body: CreateBody, request: Request, caller: Writer, services: ServicesDep
) -> JsonResponse:
    """A prompt with version 1.0 of `promptBody`, deployed to production."""
    actor = actor_of(request, caller)
    version = services.prompts.create(
        caller.organization_id, body.name, body.tags, body.promptBody, actor
    )
    return ok({"id": version.prompt_id, "versionId": version.id}, status_code=201)


@router.post("/update", operation_id="updatePrompt2025")
def new_version(
    body: UpdateBody, request: Request, caller: Writer, services: ServicesDep
) -> JsonResponse:
    """A new version made from `promptVersionId`: its next minor, or with `newMajorVersion`
    the next major; deployed to `environment` when one is given."""
    version = services.prompts.new_version(
        caller.organization_id,
        body.promptId,
        body.promptVersionId,
        body.newMajorVersion,
        body.commitMessage,
        body.promptBody,
        actor_of(request, caller),
        body.environment,
    )
    return ok({"id": version.id})


@router.post("/update/environment", operation_id="setPrompt2025VersionEnvironment")
def deploy(
    body: DeployBody, request: Request, caller: Writer, services: ServicesDep
) -> JsonResponse:
    """Point `environment` at the version (off whichever version held it)."""
    services.prompts.deploy(
        caller.organization_id,
        body.promptId,
        body.promptVersionId,
        body.environment,
        actor_of(request, caller),
    )
    return ok(None)


@router.post("/remove/environment", operation_id="removePrompt2025VersionEnvironment")
def undeploy(
    body: DeployBody, request: Request, caller: Writer, services: ServicesDep
) -> JsonResponse:
    services.prompts.undeploy(
        caller.organization_id,
        body.promptId,
        body.promptVersionId,
        body.environment,
        actor_of(request, caller),
    )
    return ok(None)


@router.post("/id/{promptId}/rename", operation_id="renamePrompt2025")
def rename(
    prompt_id: PromptId,
    body: RenameBody,
    request: Request,
    caller: Writer,
    services: ServicesDep,
) -> JsonResponse:
    actor = actor_of(request, caller)
    services.prompts.rename(caller.organization_id, prompt_id, body.name, actor)
    return ok(None)


@router.patch("/id/{promptId}/rename", operation_id="patchPrompt2025Name")
def rename_by_patch(
    prompt_id: PromptId,
    body: RenameBody,
    request: Request,
    caller: Writer,
    services: ServicesDep,
) -> JsonResponse:
    """The same as `POST .../rename`, for clients that rename with PATCH."""
    return rename(prompt_id, body, request, caller, services)


@router.patch("/id/{promptId}/tags", operation_id="updatePrompt2025Tags")
def set_tags(
    prompt_id: PromptId,
    body: TagsBody,
    request: Request,
    caller: Writer,
    services: ServicesDep,
) -> JsonResponse:
    """Replace the tags; answers the tags kept (trimmed, blanks and repeats dropped)."""
    actor = actor_of(request, caller)
    return ok(services.prompts.set_tags(caller.organization_id, prompt_id, body.tags, actor))


@router.delete("/{promptId}", operation_id="deletePrompt2025")
def delete_prompt(
    prompt_id: PromptId,
    request: Request,
    caller: Writer,
    services: ServicesDep,
) -> JsonResponse:
    """The prompt with every version and deployment."""
    services.prompts.delete(caller.organization_id, prompt_id, actor_of(request, caller))
    return ok(None)


@router.delete("/{promptId}/{promptVersionId}", operation_id="deletePrompt2025Version")
def delete_version(
    prompt_id: PromptId,
    version_id: VersionId,
    request: Request,
    caller: Writer,
    services: ServicesDep,
) -> JsonResponse:
    """One version and the deployments pointing at it; a prompt's only version is kept (409)."""
    actor = actor_of(request, caller)
    services.prompts.delete_version(caller.organization_id, version_id, actor, prompt_id)
    return ok(None)


# Reads


@router.post("/query", operation_id="queryPrompts2025")
def query(body: QueryBody, caller: Reader, services: ServicesDep) -> JsonResponse:
    """Prompts whose name holds `search` and that carry any of `tagsFilter`, newest first."""
    found = services.prompts.query(
        caller.organization_id, body.search, body.tagsFilter, body.page, body.pageSize
    )
    return ok([_prompt(prompt) for prompt in found])


@router.get("/count", operation_id="countPrompts2025")
def count(caller: Reader, services: ServicesDep) -> JsonResponse:
    return ok(services.prompts.count(caller.organization_id))


@router.get("/tags", operation_id="getPrompt2025Tags")
def tags(caller: Reader, services: ServicesDep) -> JsonResponse:
    return ok(services.prompts.tags(caller.organization_id))


@router.get("/environments", operation_id="getPrompt2025Environments")
def environments(caller: Reader, services: ServicesDep) -> JsonResponse:
    """production and staging, then the custom environments the organization deploys to."""
    return ok(services.prompts.environments(caller.organization_id))


@router.get("/id/{promptId}", operation_id="getPrompt2025")
def get_prompt(
    prompt_id: PromptId,
    caller: Reader,
    services: ServicesDep,
) -> JsonResponse:
    prompt = services.prompts.get(caller.organization_id, prompt_id)
    return _no_prompt(prompt_id) if prompt is None else ok(_prompt(prompt))


@router.get("/id/{promptId}/{promptVersionId}/inputs", operation_id="getPrompt2025Inputs")
async def get_inputs(
    prompt_id: PromptId,
    version_id: VersionId,
    request_id: Annotated[str, Query(alias="requestId", min_length=1, max_length=64)],
    caller: Reader,
    services: ServicesDep,
) -> JsonResponse:
    """The inputs a logged request compiled this version with (Helicone's `Prompt2025Input`);
    a 404 when the organization has no such request or it did not use this version."""
    canonical = canonical_id(request_id)
    found = await services.requests.inputs(caller.organization_id, canonical)
    if not found or (found["prompt_id"], found["version_id"]) != (prompt_id, version_id):
        return fail(404, f"request {canonical} did not use version {version_id} of {prompt_id}")
    shape = {"request_id": canonical, "version_id": version_id, "inputs": found["inputs"]}
    return ok({**shape, "environment": found["environment"]})


@router.post("/query/version", operation_id="getPrompt2025Version")
def get_version(body: VersionBody, caller: Reader, services: ServicesDep) -> JsonResponse:
    version = services.prompts.version(caller.organization_id, body.promptVersionId)
    if version is None:
        return fail(404, f"no prompt version {body.promptVersionId}")
    return ok(_versions(services, caller.organization_id, [version])[0])


@router.post("/query/versions", operation_id="getPrompt2025Versions")
def get_versions(body: VersionsBody, caller: Reader, services: ServicesDep) -> JsonResponse:
    """The prompt's versions (of one major when `majorVersion` is given), newest first."""
    versions = services.prompts.versions(caller.organization_id, body.promptId)
    if not versions:
        return _no_prompt(body.promptId)
    if body.majorVersion is not None:
        versions = [v for v in versions if v.major_version == body.majorVersion]
    return ok(_versions(services, caller.organization_id, versions))


@router.post("/query/production-version", operation_id="getPrompt2025ProductionVersion")
def production_version(
    body: PromptBodyQuery, caller: Reader, services: ServicesDep
) -> JsonResponse:
    return _deployed(services, caller.organization_id, body.promptId, DEFAULT_ENVIRONMENT)


@router.post("/query/environment-version", operation_id="getPrompt2025EnvironmentVersion")
def environment_version(
    body: EnvironmentBody, caller: Reader, services: ServicesDep
) -> JsonResponse:
    return _deployed(services, caller.organization_id, body.promptId, body.environment)


def _deployed(
    services: ServicesDep, organization_id: str, prompt_id: str, environment: str
) -> JsonResponse:
    version = services.prompts.environment_version(organization_id, prompt_id, environment)
    if version is None:
        return fail(404, f"no version of prompt {prompt_id} is in {environment}")
    return ok(_versions(services, organization_id, [version])[0])


@router.post("/query/total-versions", operation_id="getPrompt2025TotalVersions")
def total_versions(body: PromptBodyQuery, caller: Reader, services: ServicesDep) -> JsonResponse:
    """How many versions the prompt has, and its highest major version."""
    versions = services.prompts.versions(caller.organization_id, body.promptId)
    if not versions:
        return _no_prompt(body.promptId)
    majors = max(version.major_version for version in versions)
    return ok({"totalVersions": len(versions), "majorVersions": majors})


@router.get("/{promptVersionId}/prompt-body", operation_id="getPrompt2025Body")
def prompt_body(
    version_id: VersionId,
    caller: Reader,
    services: ServicesDep,
) -> JsonResponse:
    """The version's body itself (not in the envelope), as Helicone's bucket serves it."""
    version = services.prompts.version(caller.organization_id, version_id)
    if version is None:
        return fail(404, f"no prompt version {version_id}")
    return JsonResponse(version.body)


@router.get("/shared-body/{token}", operation_id="getPrompt2025SharedBody")
def shared_body(
    token: Annotated[str, Path(min_length=1, max_length=512)], services: ServicesDep
) -> JsonResponse:
    """A version's body by the link in its `s3_url`: no key, for an hour (as Helicone's
    presigned bucket URLs, which its SDK fetches without credentials)."""
    links = PromptBodyLinks(services.vault, services.settings.resolved_public_url)
    opened = links.opened(token)
    version = None if opened is None else services.prompts.version(*opened)
    if version is None:
        return fail(404, "no such prompt body, or its link has expired")
    return JsonResponse(version.body)
