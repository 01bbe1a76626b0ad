"""The refusal of a request the unified gateway cannot express in the provider's API."""

from __future__ import annotations

from heliograph.domain.errors import InvalidInput


class Untranslatable(InvalidInput):
    """A field, content part or value the chosen provider has no equivalent for; the message
    names it. Never silently dropped: the caller picks another model or removes it."""

    code = "untranslatable"
