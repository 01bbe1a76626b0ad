"""An organization's own provider keys as the gateway reads them (bring your own key), on each
app DB: the newest live key of that organization and provider and never another's; a deleted,
replaced or added key taken up by the background re-check; no query per request for an
organization without a key; one lookup for a burst of requests; a wrong master key or an app DB
away, and bad input."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import update

from heliograph.appdb.engine import session_factory
from heliograph.appdb.lookups import AppDbLookups
from heliograph.appdb.models import ProviderKey
from heliograph.appdb.provider_key_lookups import ProviderKeyLookups, ProviderKeyRow
from heliograph.services import provider_key_source
from heliograph.services.audit import SYSTEM
from heliograph.services.container import AppDb, open_app_db
from heliograph.services.provider_key_source import ProviderKeySource
from heliograph.services.vault import Vault, new_key_text
from heliograph.settings import load_settings

OLD = "sk-openai-older-secret-0000000000aaaa"
NEW = "sk-openai-newer-secret-1111111111bbbb"
CLAUDE = "sk-ant-org-a-secret-2222222222cccc"
OTHER = "sk-openai-org-b-secret-3333333333dddd"
Pair = tuple[str, str]


class Counting:
    """The real lookups, counting the queries the source makes."""

    def __init__(self, inner: ProviderKeyLookups) -> None:
        self.inner = inner
        self.newest_calls: list[Pair] = []
        self.rows_calls = 0
        self.broken = False

    def newest(self, organization_id: str, provider_name: str) -> ProviderKeyRow | None:
        self._check()
        self.newest_calls.append((organization_id, provider_name))
        return self.inner.newest(organization_id, provider_name)

    def rows(self, pairs: Sequence[Pair]) -> dict[Pair, ProviderKeyRow]:
        self._check()
        self.rows_calls += 1
        return self.inner.rows(pairs)

    def _check(self) -> None:
        if self.broken:
            raise ConnectionError("app DB away")


@dataclass
class World:
    app_db: AppDb
    lookups: ProviderKeyLookups
    directory: Counting
    org_a: str
    org_b: str
    sources: list[ProviderKeySource] = field(default_factory=list)

    def add(self, organization_id: str, provider: str, secret: str) -> str:
        info = self.app_db.provider_keys.create(organization_id, provider, secret, "k", SYSTEM)
        return info.id

    def source(
        self, ttl_s: float = 60.0, refresh_s: float = 3600.0, vault: Vault | None = None
    ) -> ProviderKeySource:
        source = ProviderKeySource(self.directory, vault or self.app_db.vault, ttl_s, refresh_s)
        self.sources.append(source)
        return source


@pytest.fixture
def app_db(tmp_path: Path, database_url: str) -> Iterator[AppDb]:
    settings = load_settings({}, data_dir=tmp_path / "data", database_url=database_url)
    opened = open_app_db(settings)
    opened.vault.ensure_key()
    yield opened
    opened.engine.dispose()


@pytest.fixture
async def world(app_db: AppDb, database_url: str) -> AsyncIterator[World]:
    owner, _ = app_db.accounts.create_user("owner@example.com", "correct horse battery", None)
    org_a = app_db.organizations.create("Org A", owner, SYSTEM)
    org_b = app_db.organizations.create("Org B", owner, SYSTEM)
    plain = AppDbLookups(database_url)
    lookups = ProviderKeyLookups(plain)
    world = World(app_db, lookups, Counting(lookups), org_a, org_b)
    yield world
    for source in world.sources:
        await source.close()
    plain.close()


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "not within the deadline"
        await asyncio.sleep(0.02)


async def test_the_newest_key_of_that_organization_and_provider(world: World) -> None:
    a, b = world.org_a, world.org_b
    old_id = world.add(a, "openai", OLD)
    new_id = world.add(a, "OPENAI", NEW)
    claude_id = world.add(a, "anthropic", CLAUDE)
    other_id = world.add(b, "openai", OTHER)
    gone_id = world.add(b, "gemini", "AIza-deleted-secret-4444")
    world.app_db.provider_keys.delete(b, gone_id, SYSTEM)

    lookups = world.lookups
    newest = lookups.newest(a, "OPENAI")
    assert newest is not None
    assert newest.id == new_id
    assert (newest.organization_id, newest.provider_name) == (a, "OPENAI")
    assert newest.ciphertext
    assert newest.nonce
    assert NEW.encode() not in newest.ciphertext
    assert lookups.newest(a, "openai") is None, "provider names are stored upper-case"
    assert lookups.newest(b, "ANTHROPIC") is None, "organization A's key is not B's"
    assert lookups.newest(b, "GOOGLE") is None, "a deleted key is never returned"
    # The query matches A's OPENAI row too (A and B, OPENAI and ANTHROPIC): only pairs asked for.
    found = lookups.rows([(a, "ANTHROPIC"), (b, "OPENAI"), (b, "GOOGLE"), ("nobody", "OPENAI")])
    assert {pair: row.id for pair, row in found.items()} == {
        (a, "ANTHROPIC"): claude_id,
        (b, "OPENAI"): other_id,
    }
    assert lookups.rows([(a, "OPENAI")])[(a, "OPENAI")] == newest
    assert lookups.rows([]) == {}

    # Created at the same moment, the larger id wins, in both queries.
    sessions = session_factory(world.app_db.engine)
    with sessions.begin() as session:
        same = datetime(2030, 1, 1, tzinfo=UTC)
        session.execute(
            update(ProviderKey).where(ProviderKey.id.in_([old_id, new_id])).values(created_at=same)
        )
    tied = max(old_id, new_id)
    assert getattr(lookups.newest(a, "OPENAI"), "id", None) == tied
    assert lookups.rows([(a, "OPENAI")])[(a, "OPENAI")].id == tied
    with sessions.begin() as session:
        session.execute(update(ProviderKey).where(ProviderKey.id == old_id).values(created_at=same))
        session.execute(
            update(ProviderKey)
            .where(ProviderKey.id == new_id)
            .values(created_at=datetime(2030, 1, 2, tzinfo=UTC))
        )

    source = world.source()
    assert await source.secret(a, "OPENAI") == NEW
    assert await source.secret(a, "openai") == NEW, "any case is upper-cased"
    assert await source.secret(a, "ANTHROPIC") == CLAUDE
    assert await source.secret(b, "OPENAI") == OTHER
    assert await source.secret(b, "ANTHROPIC") is None, "another organization's key never is"
    assert await source.secret(b, "GOOGLE") is None
    assert await source.secret("nobody", "OPENAI") is None
    # Bad input is refused without a query.
    asked = len(world.directory.newest_calls)
    for organization_id, provider in [("", "OPENAI"), (a, ""), ("x" * 65, "OPENAI"), (a, "O" * 65)]:
        assert await source.secret(organization_id, provider) is None
    assert len(world.directory.newest_calls) == asked


async def test_the_re_check_takes_up_deleted_replaced_and_added_keys(world: World) -> None:
    a, b = world.org_a, world.org_b
    keys = world.app_db.provider_keys
    old_id = world.add(a, "openai", OLD)
    new_id = world.add(a, "openai", NEW)
    world.add(b, "openai", OTHER)
    source = world.source(refresh_s=0.05)  # the real background task
    assert await source.secret(a, "OPENAI") == NEW
    assert await source.secret(b, "OPENAI") == OTHER
    assert await source.secret(a, "ANTHROPIC") is None

    def now_is(pair: Pair, expected: str | None) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return await source.secret(*pair) == expected

        return check

    replaced = "sk-openai-replaced-secret-5555555555eeee"
    keys.update(a, new_id, None, replaced, SYSTEM)
    await eventually(now_is((a, "OPENAI"), replaced))
    keys.delete(a, new_id, SYSTEM)
    await eventually(now_is((a, "OPENAI"), OLD))  # the older key, still live, is the newest
    keys.delete(a, old_id, SYSTEM)
    await eventually(now_is((a, "OPENAI"), None))
    world.add(a, "anthropic", CLAUDE)
    await eventually(now_is((a, "ANTHROPIC"), CLAUDE))  # a key added where there was none
    assert await source.secret(b, "OPENAI") == OTHER, "the other organization's key is unmoved"
    # Every change came through the batched re-check, never a query per request.
    assert sorted(world.directory.newest_calls) == sorted(
        [(a, "OPENAI"), (b, "OPENAI"), (a, "ANTHROPIC")]
    )
    assert world.directory.rows_calls >= 4

    await source.close()
    calls = world.directory.rows_calls
    await asyncio.sleep(0.2)
    assert world.directory.rows_calls == calls, "closed: no more re-checks"


async def test_an_organization_without_a_key_costs_no_query_per_request(world: World) -> None:
    a = world.org_a
    source = world.source(ttl_s=0.3)
    directory = world.directory
    for _ in range(50):
        assert await source.secret(a, "OPENAI") is None
    assert directory.newest_calls == [(a, "OPENAI")]
    assert directory.rows_calls == 0

    # A burst for a pair not yet held is one lookup.
    answers = await asyncio.gather(*(source.secret(a, "ANTHROPIC") for _ in range(20)))
    assert answers == [None] * 20
    assert directory.newest_calls.count((a, "ANTHROPIC")) == 1

    await source.refresh()
    assert directory.rows_calls == 1, "pairs held are re-checked together"
    assert await source.secret(a, "OPENAI") is None
    assert len(directory.newest_calls) == 2

    await asyncio.sleep(0.4)  # unused for longer than ttl_s: forgotten, looked up again
    await source.refresh()
    assert directory.rows_calls == 1, "nothing held, nothing to re-check"
    assert await source.secret(a, "OPENAI") is None
    assert directory.newest_calls[-1] == (a, "OPENAI")
    assert len(directory.newest_calls) == 3

    source.forget()
    assert await source.secret(a, "OPENAI") is None
    assert len(directory.newest_calls) == 4


async def test_a_wrong_master_key_gives_none_and_never_logs_the_secret(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a = world.org_a
    key_id = world.add(a, "openai", NEW)
    wrong = Vault(new_key_text(), tmp_path / "unused.key")
    source = world.source(vault=wrong)
    with caplog.at_level(logging.ERROR, logger="heliograph.provider_keys"):
        assert await source.secret(a, "OPENAI") is None
        assert await source.secret(a, "OPENAI") is None
    assert world.directory.newest_calls == [(a, "OPENAI")], "held, and retried only later"
    assert key_id in caplog.text
    assert "treated as absent" in caplog.text
    assert len(caplog.records) == 1
    assert NEW not in caplog.text
    assert NEW[-4:] not in caplog.text
    await source.refresh()
    assert len(caplog.records) == 1, "an unchanged key is not opened (nor logged) again"

    # The right master key opens the same row.
    assert await world.source().secret(a, "OPENAI") == NEW


async def test_a_key_that_did_not_open_is_tried_again_soon(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the right master key is back in the key file, the key opens without a restart."""
    monkeypatch.setattr(provider_key_source, "NEGATIVE_TTL_S", 0.2)
    a = world.org_a
    world.add(a, "openai", NEW)
    key_file = tmp_path / "secret.key"
    key_file.write_text(new_key_text() + "\n")
    source = world.source(vault=Vault("", key_file))
    assert await source.secret(a, "OPENAI") is None
    key_file.write_text(world.app_db.vault.key_file.read_text())
    assert await source.secret(a, "OPENAI") is None, "held until it expires"
    await asyncio.sleep(0.3)
    assert await source.secret(a, "OPENAI") == NEW
    assert world.directory.newest_calls == [(a, "OPENAI")] * 2


async def test_an_app_db_away_keeps_the_keys_held(world: World) -> None:
    a = world.org_a
    world.add(a, "openai", NEW)
    source = world.source()
    assert await source.secret(a, "OPENAI") == NEW
    world.directory.broken = True
    with pytest.raises(ConnectionError):
        await source.refresh()
    assert await source.secret(a, "OPENAI") == NEW, "what is held stays in use"
    with pytest.raises(ConnectionError):
        await source.secret(a, "ANTHROPIC")  # not held: the caller decides, never a silent None
    world.directory.broken = False
    assert await source.secret(a, "ANTHROPIC") is None
