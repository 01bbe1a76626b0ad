"""The gateway's read of prompts: the version a chat-completion body names (by id, or the one an
environment serves), and which versions known references point at now, in plain SQL over
`AppDbLookups` (no SQLAlchemy, so the gateway process stays lean). Every read is scoped to the
organization that owns the prompt."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from heliograph.appdb.lookups import AppDbLookups


@dataclass(frozen=True, slots=True)
class PromptRef:
    """What a request names: a prompt of an organization, by version id or by environment."""

    organization_id: str
    prompt_id: str
    version_id: str | None
    environment: str


@dataclass(frozen=True, slots=True)
class PromptVersionRow:
    """The answer for a `PromptRef`: whether the prompt exists, and the version's id and body
    (JSON text) when the version or the environment's deployment does too."""

    prompt_found: bool
    version_id: str | None = None
    body: str | None = None


UNKNOWN = PromptVersionRow(prompt_found=False)


class PromptLookups:
    def __init__(self, lookups: AppDbLookups) -> None:
        self._lookups = lookups

    def lookup(self, ref: PromptRef) -> PromptVersionRow:
        mark = self._lookups.mark
        if ref.version_id is not None:
            join = f"LEFT JOIN prompt_versions v ON v.prompt_id = p.id AND v.id = {mark}"
            first = ref.version_id
        else:
            join = (
                f"LEFT JOIN prompt_environments e ON e.prompt_id = p.id AND e.environment = {mark}"
                " LEFT JOIN prompt_versions v ON v.id = e.version_id AND v.prompt_id = p.id"
            )
            first = ref.environment
        rows = self._lookups.query(
            f"SELECT v.id, v.body FROM prompts p {join}"
            f" WHERE p.organization_id = {mark} AND p.id = {mark}",
            [first, ref.organization_id, ref.prompt_id],
        )
        if not rows:
            return UNKNOWN
        version_id, body = rows[0]
        return PromptVersionRow(True, version_id, body)

    def live_versions(self, version_ids: Sequence[str]) -> dict[str, str]:
        """Those of `version_ids` whose version and prompt still exist: version id → org id."""
        if not version_ids:
            return {}
        marks = ", ".join([self._lookups.mark] * len(version_ids))
        rows = self._lookups.query(
            "SELECT v.id, p.organization_id FROM prompt_versions v JOIN prompts p"
            " ON p.id = v.prompt_id AND p.organization_id = v.organization_id"
            f" WHERE v.id IN ({marks})",
            list(version_ids),
        )
        return {row[0]: row[1] for row in rows}

    def deployments(self, prompt_ids: Sequence[str]) -> dict[tuple[str, str, str], str]:
        """Every environment of those prompts: (org id, prompt id, environment) → version id."""
        if not prompt_ids:
            return {}
        marks = ", ".join([self._lookups.mark] * len(prompt_ids))
        rows = self._lookups.query(
            "SELECT p.organization_id, e.prompt_id, e.environment, e.version_id"
            " FROM prompt_environments e JOIN prompts p ON p.id = e.prompt_id"
            " AND p.organization_id = e.organization_id"
            " JOIN prompt_versions v ON v.id = e.version_id AND v.prompt_id = p.id"
            f" WHERE e.prompt_id IN ({marks})",
            list(prompt_ids),
        )
        return {(row[0], row[1], row[2]): row[3] for row in rows}
