"""`Scope`: one organization's wall around a read. Every SQL builder takes one and writes its
clause from it; the engine also gets it as `additional_table_filters`, so a builder that forgot
the clause still reads only that organization's rows. Only the engine makes one (`scope_of`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

# Every table a read can touch, each filtered to the organization by the engine itself.
SCOPED_TABLES = (
    "request_response",
    "request_annotations",
    "request_properties",
    "session_annotations",
    "request_rollup_hourly",
)
_MADE_BY_THE_ENGINE = object()


@dataclass(frozen=True, slots=True)
class Scope:
    organization_id: str  # a canonical UUID: safe inside the engine setting's text
    _token: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._token is not _MADE_BY_THE_ENGINE:
            raise TypeError("a Scope is made by the analytics engine (AnalyticsEngine.scope)")

    @property
    def clause(self) -> str:
        """The condition keeping a table's rows to the organization (its parameter: `org`)."""
        return "organization_id = {org:UUID}"

    def bind(self, params: dict[str, Any]) -> str:
        """`clause`, with its parameter added to `params`."""
        params["org"] = self.organization_id
        return self.clause

    def where(self, condition: str, params: dict[str, Any]) -> str:
        """`condition` held to the organization."""
        return f"{self.bind(params)} AND {condition}"

    def params(self, **values: Any) -> dict[str, Any]:
        """A statement's parameters: the organization's and `values`."""
        return {"org": self.organization_id, **values}

    def engine_settings(self) -> dict[str, Any]:
        """The engine-level filter holding every table a read can touch to the organization."""
        scope = f"organization_id = toUUID(\\'{self.organization_id}\\')"
        filters = ", ".join(f"'{table}': '{scope}'" for table in SCOPED_TABLES)
        return {"additional_table_filters": "{" + filters + "}"}


def scope_of(organization_id: str) -> Scope:
    """The scope of `organization_id` (`ValueError` if it is not a UUID); for the engine."""
    return Scope(str(uuid.UUID(organization_id)), _MADE_BY_THE_ENGINE)
