"""`PromptCache`: the prompt versions chat-completion bodies name, answered from memory. A reference
seen once is read from the app DB (on a thread; callers asking the same at once share the read);
a background task re-checks every known reference every `REFRESH_S`, so a deploy, an undeploy, a
new version or a delete reaches every process within seconds. Unknown references are remembered
until the next re-check (at most `NEGATIVE_TTL_S`), so a flood of them does not reach the app
DB per request. No SQLAlchemy: the gateway process uses it too."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from heliograph.appdb.prompt_lookups import PromptRef, PromptVersionRow
from heliograph.services.key_cache import CHECK_CHUNK
from heliograph.services.periodic import Periodic

log = logging.getLogger("heliograph.prompts")
REFRESH_S = 2.0
NEGATIVE_TTL_S = 2.0  # short: a prompt created or deployed a moment ago must soon be found
MAX_KNOWN = 10_000
MAX_REFUSED = 10_000  # made-up ids; each refresh sweeps them on the event loop


class PromptDirectory(Protocol):
    """Where prompts are read: `appdb/prompt_lookups.py`."""

    def lookup(self, ref: PromptRef) -> PromptVersionRow: ...

    def live_versions(self, version_ids: Sequence[str]) -> dict[str, str]: ...

    def deployments(self, prompt_ids: Sequence[str]) -> dict[tuple[str, str, str], str]: ...


@dataclass(frozen=True, slots=True)
class Template:
    """A known prompt's version asked for (`version_id` None: there is no such version)."""

    version_id: str | None
    body: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Known:
    template: Template
    used_at: float


class PromptCache:
    def __init__(
        self, directory: PromptDirectory, ttl_s: float, refresh_s: float = REFRESH_S
    ) -> None:
        self._directory = directory
        self._ttl_s = ttl_s  # a reference unused this long is forgotten
        self._known: dict[PromptRef, _Known] = {}
        self._refused: dict[PromptRef, tuple[Template | None, float]] = {}
        self._reading: dict[PromptRef, asyncio.Task[Template | None]] = {}
        self._next_refresh = asyncio.Event()  # set when the next re-check to start is over
        self._refresher = Periodic(
            self.refresh,
            refresh_s,
            "prompt-refresh",
            "cannot re-check prompts (%s); known prompts stay in use",
        )

    async def template(
        self, organization_id: str, prompt_id: str, version_id: str | None, environment: str
    ) -> Template | None:
        """The version a request names, or None when the organization has no such prompt."""
        ref = PromptRef(organization_id, prompt_id, version_id, "" if version_id else environment)
        now = time.monotonic()
        known = self._known.get(ref)
        if known is not None:
            known.used_at = now
            return known.template
        refused = self._refused.get(ref)
        if refused is not None and refused[1] > now:
            return refused[0]
        self._refresher.start()
        reading = self._reading.get(ref)
        if reading is None:
            reading = asyncio.get_running_loop().create_task(self._read(ref))
            self._reading[ref] = reading
            reading.add_done_callback(lambda _: self._reading.pop(ref, None))
        # Shielded: a caller that goes away must not cancel a read others wait on.
        return await asyncio.shield(reading)

    async def refreshed(self) -> None:
        """Return once a re-check that started after this call is over (tests wait on it)."""
        await self._next_refresh.wait()

    def forget(self) -> None:
        self._known.clear()
        self._refused.clear()

    async def close(self) -> None:
        await self._refresher.stop()
        for reading in list(self._reading.values()):
            reading.cancel()

    async def refresh(self) -> None:
        """Forget references unused for `ttl_s`; follow the others to the version they name now
        (a deploy or undeploy), and drop those whose version or prompt is gone."""
        done, self._next_refresh = self._next_refresh, asyncio.Event()
        try:
            await self._refresh()
        finally:
            done.set()

    async def _refresh(self) -> None:
        now = time.monotonic()
        for ref, known in list(self._known.items()):
            if now - known.used_at > self._ttl_s:
                del self._known[ref]
        self._refused.clear()  # a refusal lasts until the next re-check, so a deploy ends it
        if not self._known:
            return
        checked = list(self._known.items())
        current = await asyncio.to_thread(self._recheck, checked)
        for ref, known in checked:
            if self._known.get(ref) is not known:
                continue  # read again meanwhile: that answer is newer
            template = current.get(ref)
            if template is None:
                del self._known[ref]
            else:
                known.template = template

    async def _read(self, ref: PromptRef) -> Template | None:
        template = await asyncio.to_thread(self._fetch, ref)
        now = time.monotonic()
        if template is None or template.version_id is None:
            if len(self._refused) >= MAX_REFUSED:
                self._refused.clear()
            self._refused[ref] = (template, now + NEGATIVE_TTL_S)
            return template
        if len(self._known) >= MAX_KNOWN:
            self._known.clear()
        self._refused.pop(ref, None)
        self._known[ref] = _Known(template, now)
        return template

    def _fetch(self, ref: PromptRef) -> Template | None:
        """On a thread: the reference's answer, its body parsed."""
        row = self._directory.lookup(ref)
        if not row.prompt_found:
            return None
        if row.version_id is None or row.body is None:
            return Template(None)
        try:
            body = orjson.loads(row.body)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):  # the API stores only checked bodies: a broken row
            log.error("prompt version %s has a body that is not a JSON object", row.version_id)
            return Template(None)
        return Template(row.version_id, body)

    def _recheck(self, checked: list[tuple[PromptRef, _Known]]) -> dict[PromptRef, Template]:
        """On a thread: each reference still answered, with the template it now names."""
        pinned = sorted({ref.version_id for ref, _ in checked if ref.version_id is not None})
        prompt_ids = sorted({ref.prompt_id for ref, _ in checked if ref.version_id is None})
        live: dict[str, str] = {}
        for start in range(0, len(pinned), CHECK_CHUNK):
            live.update(self._directory.live_versions(pinned[start : start + CHECK_CHUNK]))
        deployed: dict[tuple[str, str, str], str] = {}
        for start in range(0, len(prompt_ids), CHECK_CHUNK):
            deployed.update(self._directory.deployments(prompt_ids[start : start + CHECK_CHUNK]))
        current: dict[PromptRef, Template] = {}
        for ref, known in checked:
            if ref.version_id is not None:
                if live.get(ref.version_id) == ref.organization_id:
                    current[ref] = known.template  # versions never change, only go
                continue
            now_deployed = deployed.get((ref.organization_id, ref.prompt_id, ref.environment))
            if now_deployed is None:
                continue
            if now_deployed == known.template.version_id:
                current[ref] = known.template
                continue
            template = self._fetch(ref)  # deployed elsewhere since: read that version
            if template is not None and template.version_id is not None:
                current[ref] = template
        return current
