"""Prompts managed outside the caller's code (Helicone's Prompts 2025): a prompt has a name,
tags and immutable `major.minor` versions, each an OpenAI chat-completion body with typed
`{{hc:name:type}}` variables; environments (production, staging, custom) each point at one
version, and one version may hold several. Every change is an audit line in its transaction."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from heliograph.appdb import prompts as repository
from heliograph.appdb.models import Prompt, PromptEnvironment, PromptVersion
from heliograph.appdb.repository import hold_organization
from heliograph.domain.errors import InvalidInput
from heliograph.domain.json_values import clean_json, nested_deeper_than
from heliograph.domain.prompts import (
    DEFAULT_ENVIRONMENT,
    MAX_DEPTH,
    PromptError,
    PromptTooLarge,
    Variable,
    check_environment,
    check_prompt_body,
    next_version,
    variables,
    version_text,
)
from heliograph.domain.text import clean_text
from heliograph.services.audit import Actor, AuditLog

MAX_PROMPTS = 1_000  # per organization
MAX_VERSIONS = 1_000  # per prompt
MAX_NAME_CHARS = 256
MAX_TAGS = 20
MAX_TAG_CHARS = 64
MAX_BODY_BYTES = 256 * 1024  # a version's body, as stored JSON
MAX_COMMIT_CHARS = 2_000
MAX_MODEL_CHARS = 256
MAX_PAGE_SIZE = 1_000
STANDARD_ENVIRONMENTS = ("production", "staging")
FIRST_COMMIT = "First version."  # Helicone's message for the version a prompt is created with
ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
ID_CHARS = 6  # Helicone's prompt ids are six characters, typed into code as `prompt_id`
NUMBERING_ATTEMPTS = 3  # a concurrent change took the number or row: count again

T = TypeVar("T")


class PromptNotFound(InvalidInput):
    """No such prompt, version or deployment for this organization."""

    status = 404
    code = "not_found"


class PromptExists(InvalidInput):
    """Another of the organization's prompts has that name."""

    status = 409
    code = "conflict"


class PromptLimitReached(InvalidInput):
    """A per-organization or per-prompt cap is reached, or the change would leave a prompt
    without a version."""

    status = 409
    code = "limit_reached"


@dataclass(frozen=True)
class PromptInfo:
    id: str
    name: str
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    environments: dict[str, str]  # environment -> the version id deployed there
    version_count: int


@dataclass(frozen=True)
class PromptVersionInfo:
    id: str
    prompt_id: str
    major_version: int
    minor_version: int
    model: str
    body: dict[str, Any]
    commit_message: str
    environments: list[str]
    created_at: datetime
    created_by: str | None
    variables: tuple[Variable, ...]

    @property
    def version(self) -> str:
        return version_text(self.major_version, self.minor_version)


@dataclass(frozen=True, slots=True)
class CheckedBody:
    text: str  # the JSON stored
    model: str


class PromptService:
    def __init__(self, sessions: sessionmaker[Session], audit: AuditLog) -> None:
        self._sessions = sessions
        self._audit = audit

    # Reads

    def query(
        self,
        organization_id: str,
        search: str = "",
        tags: Sequence[str] = (),
        page: int = 0,
        page_size: int = 100,
    ) -> list[PromptInfo]:
        """The prompts whose name holds `search` and that carry any of `tags`, newest first."""
        if page < 0 or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise PromptError(f"page must be 0 or more and pageSize 1 to {MAX_PAGE_SIZE}")
        wanted = set(tags)
        with self._sessions() as session:
            found = repository.list_prompts(session, organization_id, clean_text(search))
            if wanted:
                found = [prompt for prompt in found if wanted & set(_tags(prompt))]
            chosen = found[page * page_size : (page + 1) * page_size]
            return _prompt_infos(session, organization_id, chosen)

    def count(self, organization_id: str) -> int:
        with self._sessions() as session:
            return repository.count_prompts(session, organization_id)

    def get(self, organization_id: str, prompt_id: str) -> PromptInfo | None:
        with self._sessions() as session:
            prompt = repository.get_prompt(session, organization_id, prompt_id)
            return None if prompt is None else _prompt_infos(session, organization_id, [prompt])[0]

    def versions(self, organization_id: str, prompt_id: str) -> list[PromptVersionInfo]:
        """The prompt's versions, newest first; empty when the organization has no such prompt
        (a prompt always keeps at least one version)."""
        with self._sessions() as session:
            rows = repository.list_versions(session, organization_id, prompt_id)
            deployed = _deployed_by_version(session, organization_id, [prompt_id])
            return [_version_info(row, deployed.get(row.id, [])) for row in rows]

    def version(self, organization_id: str, version_id: str) -> PromptVersionInfo | None:
        with self._sessions() as session:
            row = repository.get_version(session, organization_id, version_id)
            if row is None:
                return None
            return _version_info(row, repository.environments_of(session, organization_id, row.id))

    def environment_version(
        self, organization_id: str, prompt_id: str, environment: str
    ) -> PromptVersionInfo | None:
        """The version deployed to `environment`, or None when none is."""
        environment = check_environment(environment)
        with self._sessions() as session:
            deployed = repository.deployment(session, organization_id, prompt_id, environment)
            if deployed is None:
                return None
            row = repository.get_version(session, organization_id, deployed.version_id)
            if row is None:
                return None
            return _version_info(row, repository.environments_of(session, organization_id, row.id))

    def environments(self, organization_id: str) -> list[str]:
        """production and staging, then the custom environments in use."""
        with self._sessions() as session:
            used = repository.environments_in_use(session, organization_id)
        custom = [name for name in used if name not in STANDARD_ENVIRONMENTS]
        return [*STANDARD_ENVIRONMENTS, *custom]

    def tags(self, organization_id: str) -> list[str]:
        with self._sessions() as session:
            texts = repository.all_tags(session, organization_id)
        return sorted({tag for text in texts for tag in _parse_tags(text)})

    # Changes

    def create(
        self,
        organization_id: str,
        name: str,
        tags: Sequence[str],
        body: Any,
        actor: Actor,
    ) -> PromptVersionInfo:
        """A new prompt with version 1.0 of `body`, deployed to production (as in Helicone,
        the first version serves production)."""
        name, tags, checked = checked_name(name), checked_tags(tags), checked_body(body)
        try:
            return self._create(organization_id, name, tags, checked, actor)
        except IntegrityError:  # the same name, saved by a concurrent request meanwhile
            raise PromptExists(f"a prompt named {name!r} already exists") from None

    def _create(
        self, org_id: str, name: str, tags: list[str], checked: CheckedBody, actor: Actor
    ) -> PromptVersionInfo:
        now = datetime.now(UTC)
        with self._sessions.begin() as session:
            hold_organization(session, org_id)  # concurrent creations count one at a time
            if repository.count_prompts(session, org_id) >= MAX_PROMPTS:
                raise PromptLimitReached(f"an organization keeps at most {MAX_PROMPTS} prompts")
            _refuse_taken_name(session, org_id, name)
            prompt = Prompt(
                id=_new_prompt_id(session),
                organization_id=org_id,
                name=name,
                tags=_json(tags),
                created_at=now,
                updated_at=now,
            )
            repository.add(session, prompt)
            session.flush()  # the prompt row before the rows that point at it
            version = _new_version(prompt.id, org_id, (1, 0), checked, FIRST_COMMIT, actor, now)
            repository.add(session, version)
            session.flush()
            _point(session, prompt, version.id, DEFAULT_ENVIRONMENT, now)
            details = {"name": name, "version": "1.0", "environment": DEFAULT_ENVIRONMENT}
            self._record(session, actor, "prompt.create", org_id, prompt.id, details)
            return _version_info(version, [DEFAULT_ENVIRONMENT])

    def new_version(
        self,
        organization_id: str,
        prompt_id: str,
        base_version_id: str,
        new_major: bool,
        commit_message: str,
        body: Any,
        actor: Actor,
        environment: str | None = None,
    ) -> PromptVersionInfo:
        """A version made from `base_version_id`: the next minor of its major, or the next
        major (`n+1.0`); deployed to `environment` when one is named."""
        checked, message = checked_body(body), checked_commit_message(commit_message)
        if environment is not None:
            environment = check_environment(environment)

        def attempt() -> PromptVersionInfo:
            return self._new_version(
                organization_id,
                prompt_id,
                base_version_id,
                new_major,
                (message, checked),
                actor,
                environment,
            )

        return _retried(attempt)

    def _new_version(
        self,
        org_id: str,
        prompt_id: str,
        base_id: str,
        new_major: bool,
        content: tuple[str, CheckedBody],
        actor: Actor,
        environment: str | None,
    ) -> PromptVersionInfo:
        now = datetime.now(UTC)
        with self._sessions.begin() as session:
            prompt = _prompt(session, org_id, prompt_id)
            base = _version_of(session, org_id, prompt_id, base_id)
            numbers = repository.version_numbers(session, org_id, prompt_id)
            if len(numbers) >= MAX_VERSIONS:
                raise PromptLimitReached(f"a prompt keeps at most {MAX_VERSIONS} versions")
            number = next_version(numbers, (base.major_version, base.minor_version), new_major)
            message, checked = content
            version = _new_version(prompt_id, org_id, number, checked, message, actor, now)
            repository.add(session, version)
            session.flush()
            if environment is not None:
                _point(session, prompt, version.id, environment, now)
            prompt.updated_at = now
            details = {"version": version_text(*number), "from": base_id}
            if environment is not None:
                details["environment"] = environment
            self._record(session, actor, "prompt.version.create", org_id, prompt_id, details)
            return _version_info(version, [] if environment is None else [environment])

    def deploy(
        self,
        organization_id: str,
        prompt_id: str,
        version_id: str,
        environment: str,
        actor: Actor,
    ) -> None:
        """Point `environment` at the version (moving it off whichever version held it)."""
        environment = check_environment(environment)

        def attempt() -> None:
            now = datetime.now(UTC)
            with self._sessions.begin() as session:
                prompt = _prompt(session, organization_id, prompt_id)
                version = _version_of(session, organization_id, prompt_id, version_id)
                _point(session, prompt, version.id, environment, now)
                prompt.updated_at = now
                details = {"environment": environment, "version": _number(version)}
                details["id"] = version_id
                self._record(session, actor, "prompt.deploy", organization_id, prompt_id, details)

        _retried(attempt)  # a concurrent first deploy to the same environment

    def undeploy(
        self,
        organization_id: str,
        prompt_id: str,
        version_id: str,
        environment: str,
        actor: Actor,
    ) -> None:
        """Take `environment` off the version; a 404 when the version does not hold it."""
        environment = check_environment(environment)
        with self._sessions.begin() as session:
            prompt = _prompt(session, organization_id, prompt_id)
            version = _version_of(session, organization_id, prompt_id, version_id)
            held = repository.deployment(session, organization_id, prompt_id, environment)
            if held is None or held.version_id != version_id:
                raise PromptNotFound(f"version {_number(version)} is not in {environment}")
            repository.remove(session, held)
            prompt.updated_at = datetime.now(UTC)
            details = {"environment": environment, "version": _number(version), "id": version_id}
            self._record(session, actor, "prompt.undeploy", organization_id, prompt_id, details)

    def rename(self, organization_id: str, prompt_id: str, name: str, actor: Actor) -> None:
        name = checked_name(name)
        try:
            with self._sessions.begin() as session:
                prompt = _prompt(session, organization_id, prompt_id)
                if prompt.name != name:
                    _refuse_taken_name(session, organization_id, name)
                details = {"name": name, "was": prompt.name}
                prompt.name, prompt.updated_at = name, datetime.now(UTC)
                self._record(session, actor, "prompt.rename", organization_id, prompt_id, details)
        except IntegrityError:
            raise PromptExists(f"a prompt named {name!r} already exists") from None

    def set_tags(
        self, organization_id: str, prompt_id: str, tags: Sequence[str], actor: Actor
    ) -> list[str]:
        """Replace the prompt's tags; the tags kept (trimmed, blanks and repeats dropped)."""
        kept = checked_tags(tags)
        with self._sessions.begin() as session:
            prompt = _prompt(session, organization_id, prompt_id)
            prompt.tags, prompt.updated_at = _json(kept), datetime.now(UTC)
            details = {"tags": kept}
            self._record(session, actor, "prompt.tags", organization_id, prompt_id, details)
        return kept

    def delete(self, organization_id: str, prompt_id: str, actor: Actor) -> None:
        """The prompt, every version and every deployment."""
        with self._sessions.begin() as session:
            prompt = _prompt(session, organization_id, prompt_id)
            details = {"name": prompt.name}
            repository.remove_prompt(session, organization_id, prompt_id)
            self._record(session, actor, "prompt.delete", organization_id, prompt_id, details)

    def delete_version(
        self,
        organization_id: str,
        version_id: str,
        actor: Actor,
        prompt_id: str | None = None,
    ) -> None:
        """The version and the deployments pointing at it (those environments then serve
        nothing). A prompt's only version is kept (409): delete the prompt instead. With
        `prompt_id`, the version must be that prompt's."""
        with self._sessions.begin() as session:
            version = repository.get_version(session, organization_id, version_id)
            if version is None or prompt_id not in (None, version.prompt_id):
                raise PromptNotFound(f"no prompt version {version_id}")
            prompt = _prompt(session, organization_id, version.prompt_id)
            if len(repository.version_numbers(session, organization_id, prompt.id)) <= 1:
                raise PromptLimitReached(
                    "this is the prompt's only version; delete the prompt instead"
                )
            dropped = repository.environments_of(session, organization_id, version_id)
            repository.remove_version(session, organization_id, version_id)
            prompt.updated_at = datetime.now(UTC)
            details = {"version": _number(version), "id": version_id, "environments": dropped}
            self._record(
                session, actor, "prompt.version.delete", organization_id, prompt.id, details
            )

    def _record(
        self,
        session: Session,
        actor: Actor,
        action: str,
        org_id: str,
        prompt_id: str,
        details: dict[str, Any],
    ) -> None:
        self._audit.record(actor, action, org_id, ("prompt", prompt_id), details, session=session)


# Checks on what callers send


def checked_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_CHARS or not name.isprintable():
        raise PromptError(f"name must be 1 to {MAX_NAME_CHARS} printable characters")
    return name


def checked_tags(tags: Iterable[str]) -> list[str]:
    """Tags trimmed, blanks and repeats dropped (Helicone's rule), within the caps."""
    kept = list(dict.fromkeys(tag.strip() for tag in tags if tag.strip()))
    if len(kept) > MAX_TAGS:
        raise PromptError(f"a prompt has at most {MAX_TAGS} tags")
    for tag in kept:
        if len(tag) > MAX_TAG_CHARS or not tag.isprintable():
            raise PromptError(f"a tag must be 1 to {MAX_TAG_CHARS} printable characters")
    return kept


def checked_commit_message(message: str) -> str:
    message = clean_text(message).strip()
    if len(message) > MAX_COMMIT_CHARS:
        raise PromptError(f"commitMessage is limited to {MAX_COMMIT_CHARS} characters")
    return message


def checked_body(body: Any) -> CheckedBody:
    """The body as stored: an OpenAI chat-completion request with well-typed variables, its
    strings cleaned, at most `MAX_DEPTH` levels deep and `MAX_BODY_BYTES` of JSON."""
    if nested_deeper_than(body, MAX_DEPTH):
        raise PromptError(f"promptBody may nest at most {MAX_DEPTH} levels deep")
    body = clean_json(body)
    check_prompt_body(body)
    model = body.get("model", "")
    if len(model) > MAX_MODEL_CHARS:
        raise PromptError(f"promptBody.model is limited to {MAX_MODEL_CHARS} characters")
    text = _json(body)
    if len(text.encode()) > MAX_BODY_BYTES:
        raise PromptTooLarge(f"promptBody is limited to {MAX_BODY_BYTES // 1024} KiB of JSON")
    return CheckedBody(text, model)


# Rows and their shapes


def _prompt(session: Session, org_id: str, prompt_id: str) -> Prompt:
    """The prompt, locked for the transaction (every caller goes on to change it)."""
    prompt = repository.touch_prompt(session, org_id, prompt_id, datetime.now(UTC))
    if prompt is None:
        raise PromptNotFound(f"no prompt {prompt_id}")
    return prompt


def _version_of(session: Session, org_id: str, prompt_id: str, version_id: str) -> PromptVersion:
    version = repository.get_version(session, org_id, version_id)
    if version is None or version.prompt_id != prompt_id:
        raise PromptNotFound(f"prompt {prompt_id} has no version {version_id}")
    return version


def _refuse_taken_name(session: Session, org_id: str, name: str) -> None:
    if repository.prompt_named(session, org_id, name) is not None:
        raise PromptExists(f"a prompt named {name!r} already exists")


def _new_prompt_id(session: Session) -> str:
    while True:  # 62**6 ids: a second draw is rare, a third rarer still
        prompt_id = "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_CHARS))
        if not repository.prompt_id_taken(session, prompt_id):
            return prompt_id


def _new_version(
    prompt_id: str,
    org_id: str,
    number: tuple[int, int],
    checked: CheckedBody,
    message: str,
    actor: Actor,
    now: datetime,
) -> PromptVersion:
    return PromptVersion(
        id=str(uuid.uuid4()),
        prompt_id=prompt_id,
        organization_id=org_id,
        major_version=number[0],
        minor_version=number[1],
        model=checked.model,
        body=checked.text,
        commit_message=message,
        created_by=actor.user_id,
        created_at=now,
    )


def _point(
    session: Session, prompt: Prompt, version_id: str, environment: str, now: datetime
) -> None:
    held = repository.deployment(session, prompt.organization_id, prompt.id, environment)
    if held is None:
        row = PromptEnvironment(
            prompt_id=prompt.id,
            environment=environment,
            version_id=version_id,
            organization_id=prompt.organization_id,
            updated_at=now,
        )
        repository.add(session, row)
    else:
        held.version_id, held.updated_at = version_id, now


def _retried(attempt: Callable[[], T]) -> T:
    """`attempt` again when a concurrent change took the row it was adding (the version
    number it counted, or an environment's first deployment)."""
    for _ in range(NUMBERING_ATTEMPTS - 1):
        try:
            return attempt()
        except IntegrityError:
            continue
    return attempt()


def _prompt_infos(session: Session, org_id: str, prompts: list[Prompt]) -> list[PromptInfo]:
    ids = [prompt.id for prompt in prompts]
    counts = repository.count_versions(session, org_id, ids)
    environments: dict[str, dict[str, str]] = {}
    for row in repository.deployments(session, org_id, ids):
        environments.setdefault(row.prompt_id, {})[row.environment] = row.version_id
    return [
        PromptInfo(
            prompt.id,
            prompt.name,
            _tags(prompt),
            prompt.created_at,
            prompt.updated_at,
            environments.get(prompt.id, {}),
            counts.get(prompt.id, 0),
        )
        for prompt in prompts
    ]


def _deployed_by_version(
    session: Session, org_id: str, prompt_ids: list[str]
) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for row in repository.deployments(session, org_id, prompt_ids):
        found.setdefault(row.version_id, []).append(row.environment)
    return found


def _version_info(row: PromptVersion, environments: list[str]) -> PromptVersionInfo:
    body = orjson.loads(row.body)
    return PromptVersionInfo(
        id=row.id,
        prompt_id=row.prompt_id,
        major_version=row.major_version,
        minor_version=row.minor_version,
        model=row.model,
        body=body,
        commit_message=row.commit_message,
        environments=sorted(environments),
        created_at=row.created_at,
        created_by=row.created_by,
        variables=variables(body),
    )


def _number(version: PromptVersion) -> str:
    return version_text(version.major_version, version.minor_version)


def _tags(prompt: Prompt) -> list[str]:
    return _parse_tags(prompt.tags)


def _parse_tags(text: str) -> list[str]:
    tags = orjson.loads(text or "[]")
    return [tag for tag in tags if isinstance(tag, str)] if isinstance(tags, list) else []


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()
