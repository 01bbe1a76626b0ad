"""Redaction of personal data and secrets from stored bodies: e-mail addresses, phone numbers
(Google's libphonenumber, via `phonenumbers`), payment card numbers (Luhn-checked, via
`python-stdnum`) and API keys or private keys in well-known formats."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import phonenumbers
from stdnum import luhn

from heliograph.domain.errors import InvalidInput

KINDS = ("email", "phone", "card", "secret")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
CARD_CANDIDATE = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
SECRET = re.compile(
    r"sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}"  # OpenAI, Anthropic (and Heliograph's own keys)
    r"|AKIA[0-9A-Z]{16}"  # AWS access key ids
    r"|gh[pousr]_[A-Za-z0-9]{36,}"  # GitHub tokens
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API keys
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"
)


class UnknownKind(InvalidInput):
    """Not one of `KINDS`."""


class Redactor:
    def __init__(self, kinds: Iterable[str]) -> None:
        self.kinds = tuple(kind for kind in KINDS if kind in set(kinds))
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise UnknownKind(f"unknown redaction kinds {sorted(unknown)}; use {', '.join(KINDS)}")
        steps: dict[str, Callable[[str], str]] = {
            "secret": _secrets,
            "email": _emails,
            "card": _cards,
            "phone": _phones,
        }
        self._steps = [
            steps[kind] for kind in ("secret", "email", "card", "phone") if kind in self.kinds
        ]

    def redact(self, text: str) -> str:
        for step in self._steps:
            text = step(text)
        return text

    def redact_bytes(self, body: bytes) -> bytes:
        if not body or not self._steps:
            return body
        return self.redact(body.decode("utf-8", "replace")).encode()


def _secrets(text: str) -> str:
    return SECRET.sub("[REDACTED_SECRET]", text)


def _emails(text: str) -> str:
    return EMAIL.sub("[REDACTED_EMAIL]", text)


def _cards(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group())
        return "[REDACTED_CARD]" if luhn.is_valid(digits) else match.group()

    return CARD_CANDIDATE.sub(replace, text)


def _phones(text: str) -> str:
    spans = [
        (match.start, match.end)
        for match in phonenumbers.PhoneNumberMatcher(
            text, "US", leniency=phonenumbers.Leniency.VALID
        )
    ]
    for start, end in reversed(spans):
        text = text[:start] + "[REDACTED_PHONE]" + text[end:]
    return text
