"""`/prompts`: the organization's prompts (searched, filtered by tag) and a form for a new one;
`/prompts/{id}`: its version history, a line diff of two versions' bodies, deployments, rename,
tags and delete; `/prompts/{id}/edit`: the editor that saves a new version; and
`/prompts/{id}/playground`: a version run through the gateway, its answer shown as it streams.
Pages read through `services.prompts`; static/prompts.js makes every change through the API."""

from __future__ import annotations

import asyncio
import difflib
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response

from heliograph.api.deps import ServicesDep
from heliograph.domain.access import Capability
from heliograph.domain.errors import InvalidInput
from heliograph.domain.prompts import DEFAULT_ENVIRONMENT, MAX_ID_CHARS
from heliograph.services.prompts import PromptInfo, PromptService, PromptVersionInfo
from heliograph.web.templating import TemplatesDep
from heliograph.web.viewer import Viewer, ViewerDep

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
MAX_PAGE = 20  # the service lists at most 1,000 prompts per organization
DIFF_CONTEXT = 3  # unchanged lines kept around each change
# Changed lines compared pairwise at most (about 0.2 s); a larger change is shown whole.
MAX_DIFF_WORK = 4_000_000
MAX_DIFF_LINES = 5_000  # lines of a diff shown; two bodies of 256 KiB could make 60,000
GAP = "\N{HORIZONTAL ELLIPSIS}"
Opcode = tuple[str, int, int, int, int]
ROLES = ("system", "user", "assistant", "tool", "developer")
Id = Annotated[str | None, Query(max_length=MAX_ID_CHARS)]
MAIN_FIELDS = ("model", "messages")  # edited as fields; the rest of a body as JSON


@dataclass(frozen=True, slots=True)
class DiffLine:
    """One line of a diff: `kind` is same, added, removed or gap (unchanged lines left out)."""

    kind: str
    old: int | None
    new: int | None
    text: str


@dataclass(frozen=True, slots=True)
class ListedPrompt:
    prompt: PromptInfo
    production: str | None  # the `major.minor` deployed to production


def body_lines(body: Any) -> list[str]:
    """A prompt body as the diff reads it: JSON, keys sorted, two spaces of indent."""
    option = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    return orjson.dumps(body, option=option).decode().splitlines()


def line_diff(old: list[str], new: list[str], context: int = DIFF_CONTEXT) -> list[DiffLine]:
    """The changes from `old` to `new` with `context` unchanged lines around each, and a gap
    line where unchanged lines are left out; empty when they are the same. At most
    `MAX_DIFF_LINES` lines, then one saying how many more there are."""
    lines: list[DiffLine] = []
    for group in _grouped(_opcodes(old, new), context):
        if group[0][1] > 0 or lines:
            lines.append(DiffLine("gap", None, None, GAP))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines += [DiffLine("same", i + 1, j1 + i - i1 + 1, old[i]) for i in range(i1, i2)]
                continue
            lines += [DiffLine("removed", i + 1, None, old[i]) for i in range(i1, i2)]
            lines += [DiffLine("added", None, j + 1, new[j]) for j in range(j1, j2)]
    last = lines[-1] if lines else None
    if last is not None and last.kind == "same" and last.old is not None and last.old < len(old):
        lines.append(DiffLine("gap", None, None, GAP))
    if len(lines) > MAX_DIFF_LINES:
        more = f"{GAP} {len(lines) - MAX_DIFF_LINES:,} more lines not shown"
        lines = [*lines[:MAX_DIFF_LINES], DiffLine("gap", None, None, more)]
    return lines


def _opcodes(old: list[str], new: list[str]) -> list[Opcode]:
    """difflib's opcodes for the changed middle only (the common start and end are cut first),
    and that middle as one replacement when comparing it line by line could take seconds:
    `SequenceMatcher` is quadratic on lines that differ."""
    shorter = min(len(old), len(new))
    start = 0
    while start < shorter and old[start] == new[start]:
        start += 1
    end = 0
    while end < shorter - start and old[-1 - end] == new[-1 - end]:
        end += 1
    old_end, new_end = len(old) - end, len(new) - end
    middle_old, middle_new = old[start:old_end], new[start:new_end]
    codes: list[Opcode] = [("equal", 0, start, 0, start)] if start else []
    if len(middle_old) * len(middle_new) <= MAX_DIFF_WORK:
        matcher = difflib.SequenceMatcher(None, middle_old, middle_new)
        codes += [
            (tag, i1 + start, i2 + start, j1 + start, j2 + start)
            for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        ]
    else:
        codes.append(("replace", start, old_end, start, new_end))
    if end:
        codes.append(("equal", old_end, len(old), new_end, len(new)))
    return codes


def _grouped(codes: list[Opcode], context: int) -> list[list[Opcode]]:
    """The changes with `context` unchanged lines around each, in groups separated by longer
    unchanged runs (`SequenceMatcher.get_grouped_opcodes`, over opcodes made here)."""
    if all(code[0] == "equal" for code in codes):
        return []
    codes = list(codes)
    tag, i1, i2, j1, j2 = codes[0]
    if tag == "equal":
        codes[0] = tag, max(i1, i2 - context), i2, max(j1, j2 - context), j2
    tag, i1, i2, j1, j2 = codes[-1]
    if tag == "equal":
        codes[-1] = tag, i1, min(i2, i1 + context), j1, min(j2, j1 + context)
    groups: list[list[Opcode]] = []
    group: list[Opcode] = []
    for tag, i1, i2, j1, j2 in codes:
        if tag == "equal" and i2 - i1 > 2 * context:
            group.append((tag, i1, min(i2, i1 + context), j1, min(j2, j1 + context)))
            groups.append(group)
            group = []
            i1, j1 = max(i1, i2 - context), max(j1, j2 - context)
        group.append((tag, i1, i2, j1, j2))
    if group and not (len(group) == 1 and group[0][0] == "equal"):
        groups.append(group)
    return groups


def version_pair(
    versions: list[PromptVersionInfo], chosen_id: str | None, against_id: str | None
) -> tuple[PromptVersionInfo, PromptVersionInfo | None]:
    """The version shown (the newest unless chosen) and the one it is compared with (chosen,
    else its predecessor: the next older in the newest-first history)."""
    by_id = {version.id: version for version in versions}
    if any(wanted is not None and wanted not in by_id for wanted in (chosen_id, against_id)):
        raise HTTPException(404)  # another prompt's version, or another organization's
    chosen = by_id[chosen_id] if chosen_id else versions[0]
    if against_id:
        return chosen, by_id[against_id]
    index = versions.index(chosen)
    return chosen, versions[index + 1] if index + 1 < len(versions) else None


def editable(body: dict[str, Any]) -> dict[str, Any]:
    """A body as the editor's fields: the model, one row per message (role, content as text,
    whether the content is JSON, other keys kept as JSON) and the other parameters as JSON."""
    rows = []
    for message in body.get("messages", []):
        content = message.get("content", "")
        is_text = isinstance(content, str)
        extra = {key: value for key, value in message.items() if key not in ("role", "content")}
        rows.append(
            {
                "role": str(message.get("role", "user")),
                "content": content if is_text else _pretty(content),
                "json": not is_text,
                "extra": orjson.dumps(extra).decode() if extra else "",
            }
        )
    params = {key: value for key, value in body.items() if key not in MAIN_FIELDS}
    model = body.get("model", "")
    return {
        "model": model if isinstance(model, str) else "",
        "messages": rows,
        "params": _pretty(params) if params else "",
    }


def _pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()


def _page_number(page: str | None) -> int:
    if not page:
        return 1
    if not (page.isascii() and page.isdigit() and len(page) <= 4 and 1 <= int(page) <= MAX_PAGE):
        raise InvalidInput(f"page must be a whole number from 1 to {MAX_PAGE}")
    return int(page)


def _listed(service: PromptService, org: str, found: list[PromptInfo]) -> list[ListedPrompt]:
    """Each prompt with the number of the version in production (one small read each)."""
    listed = []
    for prompt in found:
        version_id = prompt.environments.get(DEFAULT_ENVIRONMENT)
        version = service.version(org, version_id) if version_id else None
        listed.append(ListedPrompt(prompt, version.version if version else None))
    return listed


def _list_context(
    viewer: Viewer, service: PromptService, search: str, tag: str, page: int
) -> dict[str, Any]:
    org = viewer.organization_id
    found = service.query(org, search, (tag,) if tag else (), page - 1, PAGE_SIZE)
    return {
        "prompts": _listed(service, org, found),
        "all_tags": service.tags(org),
        "search": search,
        "tag": tag,
        "page": page,
        "has_next": len(found) == PAGE_SIZE and page < MAX_PAGE,
    }


@router.get("/prompts")
async def prompts_page(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    templates: TemplatesDep,
    q: Annotated[str, Query(max_length=256)] = "",
    tag: Annotated[str, Query(max_length=64)] = "",
    page: Annotated[str | None, Query(max_length=8)] = None,
) -> Response:
    number = _page_number(page)
    context = await run_in_threadpool(
        _list_context, viewer, services.prompts, q.strip(), tag.strip(), number
    )
    return templates.render(
        request,
        "prompts.html",
        viewer,
        may_write=viewer.can(Capability.WRITE),
        roles=ROLES,
        **context,
    )


async def _prompt_and_versions(
    services: ServicesDep, viewer: Viewer, prompt_id: str
) -> tuple[PromptInfo, list[PromptVersionInfo]]:
    """The prompt and its versions, newest first; another organization's is no page at all."""
    if len(prompt_id) > MAX_ID_CHARS:
        raise HTTPException(404)
    org, service = viewer.organization_id, services.prompts
    prompt = await run_in_threadpool(service.get, org, prompt_id)
    if prompt is None:
        raise HTTPException(404)
    versions = await run_in_threadpool(service.versions, org, prompt_id)
    if not versions:
        raise HTTPException(404)
    return prompt, versions


@router.get("/prompts/{prompt_id}")
async def prompt_page(
    prompt_id: str,
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    templates: TemplatesDep,
    version: Id = None,
    against: Id = None,
) -> Response:
    prompt, versions = await _prompt_and_versions(services, viewer, prompt_id)
    chosen, base = version_pair(versions, version or None, against or None)
    diff = await run_in_threadpool(
        line_diff, body_lines(base.body) if base else [], body_lines(chosen.body)
    )
    org = viewer.organization_id
    environments, members = await asyncio.gather(
        run_in_threadpool(services.prompts.environments, org),
        run_in_threadpool(services.organizations.members, org),
    )
    return templates.render(
        request,
        "prompts_detail.html",
        viewer,
        prompt=prompt,
        versions=versions,
        chosen=chosen,
        base=base,
        diff=diff,
        environments=environments,
        may_write=viewer.can(Capability.WRITE),
        numbers={each.id: each.version for each in versions},
        authors={member.user_id: member.email for member in members},
        body=_pretty(chosen.body),
        call_example=_pretty(call_example(prompt.id, chosen)),
        **_paths(prompt),
    )


@router.get("/prompts/{prompt_id}/edit")
async def prompt_editor(
    prompt_id: str,
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    templates: TemplatesDep,
    from_: Annotated[str | None, Query(alias="from", max_length=MAX_ID_CHARS)] = None,
) -> Response:
    prompt, versions = await _prompt_and_versions(services, viewer, prompt_id)
    base, _ = version_pair(versions, from_ or None, None)
    return templates.render(
        request,
        "prompts_edit.html",
        viewer,
        prompt=prompt,
        base=base,
        fields=editable(base.body),
        roles=ROLES,
        may_write=viewer.can(Capability.WRITE),
        **_paths(prompt),
    )


@router.get("/prompts/{prompt_id}/playground")
async def prompt_playground(
    prompt_id: str,
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    templates: TemplatesDep,
    version: Id = None,
) -> Response:
    prompt, versions = await _prompt_and_versions(services, viewer, prompt_id)
    production = prompt.environments.get(DEFAULT_ENVIRONMENT)
    default = production if any(v.id == production for v in versions) else None
    chosen, _ = version_pair(versions, version or default, None)
    return templates.render(
        request,
        "prompts_playground.html",
        viewer,
        prompt=prompt,
        versions=versions,
        chosen=chosen,
        may_write=viewer.can(Capability.WRITE),
        **_paths(prompt),
    )


def call_example(prompt_id: str, version: PromptVersionInfo) -> dict[str, Any]:
    """A chat-completion body that calls the prompt in production, with example inputs."""
    examples = {"string": "text", "number": 1, "boolean": True}
    inputs = {variable.name: examples[variable.type] for variable in version.variables}
    return {"model": version.model, "prompt_id": prompt_id, "inputs": inputs}


def _paths(prompt: PromptInfo) -> dict[str, Any]:
    """The prompt's page and its id as one URL path segment (ids come from the app DB, but a
    path is built only from encoded segments)."""
    segment = quote(prompt.id, safe="")
    return {"prompt_path": f"/prompts/{segment}", "api_id": segment}
