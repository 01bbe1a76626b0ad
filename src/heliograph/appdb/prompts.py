"""Small query functions over prompts, their versions and the environments they are deployed to
(`prompts`, `prompt_versions`, `prompt_environments`); callers own the session, and every
statement names the organization, so no query reaches another organization's rows."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from heliograph.appdb.models import Prompt, PromptEnvironment, PromptVersion


def list_prompts(session: Session, org_id: str, search: str = "") -> list[Prompt]:
    """The organization's prompts whose name holds `search` (any case), newest first."""
    statement = select(Prompt).where(Prompt.organization_id == org_id)
    if search:
        pattern = func.lower(Prompt.name)
        statement = statement.where(pattern.contains(search.lower(), autoescape=True))
    return list(session.scalars(statement.order_by(Prompt.created_at.desc(), Prompt.id)))


def count_prompts(session: Session, org_id: str) -> int:
    statement = select(func.count()).where(Prompt.organization_id == org_id)
    return int(session.scalar(statement.select_from(Prompt)) or 0)


def get_prompt(session: Session, org_id: str, prompt_id: str) -> Prompt | None:
    statement = select(Prompt).where(Prompt.organization_id == org_id, Prompt.id == prompt_id)
    return session.scalars(statement).first()


def touch_prompt(session: Session, org_id: str, prompt_id: str, now: datetime) -> Prompt | None:
    """The prompt, its `updated_at` set first: the write locks its row (PostgreSQL) or the
    database (SQLite) until the transaction ends, so changes to one prompt's versions and
    environments take turns and each counts what the one before it added."""
    statement = (
        update(Prompt)
        .where(Prompt.organization_id == org_id, Prompt.id == prompt_id)
        .values(updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.execute(statement)
    return get_prompt(session, org_id, prompt_id)


def prompt_named(session: Session, org_id: str, name: str) -> Prompt | None:
    statement = select(Prompt).where(Prompt.organization_id == org_id, Prompt.name == name)
    return session.scalars(statement).first()


def prompt_id_taken(session: Session, prompt_id: str) -> bool:
    """Whether any organization has a prompt `prompt_id` (ids are short, so chosen at random
    and checked)."""
    return session.scalar(select(Prompt.id).where(Prompt.id == prompt_id)) is not None


def list_versions(session: Session, org_id: str, prompt_id: str) -> list[PromptVersion]:
    """A prompt's versions, newest first."""
    statement = select(PromptVersion).where(
        PromptVersion.organization_id == org_id, PromptVersion.prompt_id == prompt_id
    )
    order = (
        PromptVersion.created_at.desc(),
        PromptVersion.major_version.desc(),
        PromptVersion.minor_version.desc(),
    )
    return list(session.scalars(statement.order_by(*order)))


def version_numbers(session: Session, org_id: str, prompt_id: str) -> list[tuple[int, int]]:
    statement = select(PromptVersion.major_version, PromptVersion.minor_version).where(
        PromptVersion.organization_id == org_id, PromptVersion.prompt_id == prompt_id
    )
    return [(int(major), int(minor)) for major, minor in session.execute(statement)]


def count_versions(session: Session, org_id: str, prompt_ids: Iterable[str]) -> dict[str, int]:
    """How many versions each of `prompt_ids` has."""
    statement = (
        select(PromptVersion.prompt_id, func.count())
        .where(PromptVersion.organization_id == org_id, PromptVersion.prompt_id.in_(prompt_ids))
        .group_by(PromptVersion.prompt_id)
    )
    return {prompt_id: int(count) for prompt_id, count in session.execute(statement)}


def get_version(session: Session, org_id: str, version_id: str) -> PromptVersion | None:
    statement = select(PromptVersion).where(
        PromptVersion.organization_id == org_id, PromptVersion.id == version_id
    )
    return session.scalars(statement).first()


def add(session: Session, row: Prompt | PromptVersion | PromptEnvironment) -> None:
    session.add(row)


def deployments(
    session: Session, org_id: str, prompt_ids: Iterable[str]
) -> list[PromptEnvironment]:
    """The environments of `prompt_ids`, by prompt and environment name."""
    statement = select(PromptEnvironment).where(
        PromptEnvironment.organization_id == org_id,
        PromptEnvironment.prompt_id.in_(prompt_ids),
    )
    order = (PromptEnvironment.prompt_id, PromptEnvironment.environment)
    return list(session.scalars(statement.order_by(*order)))


def deployment(
    session: Session, org_id: str, prompt_id: str, environment: str
) -> PromptEnvironment | None:
    statement = select(PromptEnvironment).where(
        PromptEnvironment.organization_id == org_id,
        PromptEnvironment.prompt_id == prompt_id,
        PromptEnvironment.environment == environment,
    )
    return session.scalars(statement).first()


def environments_of(session: Session, org_id: str, version_id: str) -> list[str]:
    statement = select(PromptEnvironment.environment).where(
        PromptEnvironment.organization_id == org_id, PromptEnvironment.version_id == version_id
    )
    return sorted(session.scalars(statement))


def environments_in_use(session: Session, org_id: str) -> list[str]:
    statement = (
        select(PromptEnvironment.environment)
        .where(PromptEnvironment.organization_id == org_id)
        .distinct()
    )
    return sorted(session.scalars(statement))


def all_tags(session: Session, org_id: str) -> list[str]:
    """The JSON text of each prompt's tags."""
    return list(session.scalars(select(Prompt.tags).where(Prompt.organization_id == org_id)))


def remove_version(session: Session, org_id: str, version_id: str) -> None:
    """The version and the deployments that pointed at it."""
    session.execute(
        delete(PromptEnvironment).where(
            PromptEnvironment.organization_id == org_id,
            PromptEnvironment.version_id == version_id,
        )
    )
    session.execute(
        delete(PromptVersion).where(
            PromptVersion.organization_id == org_id, PromptVersion.id == version_id
        )
    )


def remove_prompt(session: Session, org_id: str, prompt_id: str) -> None:
    """The prompt, its deployments and its versions."""
    for model in (PromptEnvironment, PromptVersion):
        session.execute(
            delete(model).where(model.organization_id == org_id, model.prompt_id == prompt_id)
        )
    session.execute(delete(Prompt).where(Prompt.organization_id == org_id, Prompt.id == prompt_id))


def remove(session: Session, row: PromptEnvironment) -> None:
    session.delete(row)
