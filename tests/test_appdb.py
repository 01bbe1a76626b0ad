"""The app DB on SQLite and on PostgreSQL: migrations up and down, organizations and keys, and the
key verifier's cache."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, inspect, text

from conftest import POSTGRES_URL
from heliograph.appdb.engine import create_app_engine, downgrade_all, session_factory, upgrade
from heliograph.appdb.lookups import AppDbLookups
from heliograph.appdb.urls import normalise_url
from heliograph.domain.access import KeyPermissions
from heliograph.domain.keys import KEY_PREFIX, Identity, bearer_token, hash_key
from heliograph.services.keys import CachedKeyVerifier, KeyService

BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(
                not POSTGRES_URL, reason="set HELIOGRAPH_TEST_POSTGRES_URL to run on PostgreSQL"
            ),
        ],
    ),
]


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = create_app_engine(f"sqlite:///{tmp_path / 'app.db'}")
        yield engine
        engine.dispose()
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"  # a schema per test keeps runs independent
    admin = create_engine(normalise_url(POSTGRES_URL))
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(
        normalise_url(POSTGRES_URL), connect_args={"options": f"-csearch_path={schema}"}
    )
    yield engine
    engine.dispose()
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def test_migrations_apply_and_roll_back(engine: Engine) -> None:
    upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"organization", "helicone_api_keys", "alembic_version"} <= tables
    downgrade_all(engine)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)  # and forward again
    assert "helicone_api_keys" in inspect(engine).get_table_names()


def test_keys_are_stored_hashed_as_helicone_does(engine: Engine) -> None:
    upgrade(engine)
    keys = KeyService(session_factory(engine))
    created = keys.create_organization("acme")
    assert created.api_key.startswith(KEY_PREFIX)
    assert len(created.api_key) == len(KEY_PREFIX) + 31
    expected = hashlib.sha256(f"Bearer {created.api_key}".encode()).hexdigest()
    with engine.connect() as connection:
        stored = (
            connection.execute(text("SELECT api_key_hash FROM helicone_api_keys")).scalars().all()
        )
    assert stored == [expected] == [hash_key(created.api_key)]
    assert created.api_key not in str(stored)


def test_create_list_revoke_and_lookup(engine: Engine) -> None:
    upgrade(engine)
    keys = KeyService(session_factory(engine))
    first = keys.create_organization("acme")
    second = keys.create_key(first.organization_id, "ci")
    assert [k.name for k in keys.list_keys(first.organization_id)] == ["default", "ci"]
    identity = keys.lookup(second.api_key)
    assert identity is not None
    assert identity.organization_id == first.organization_id
    assert keys.revoke_key(first.organization_id, second.key_id)
    assert keys.lookup(second.api_key) is None
    assert not keys.revoke_key(first.organization_id, second.key_id), "already revoked"
    other = keys.create_organization("rival")
    assert not keys.revoke_key(other.organization_id, first.key_id), "another org's key"
    with pytest.raises(LookupError):
        keys.create_key(str(uuid.uuid4()), "orphan")


async def test_verifier_caches_hits_and_misses(engine: Engine) -> None:
    upgrade(engine)
    keys = KeyService(session_factory(engine))
    created = keys.create_organization("acme")
    calls = []
    original = keys.lookup

    def counting(key: str):  # type: ignore[no-untyped-def]
        calls.append(key)
        return original(key)

    keys.lookup = counting  # type: ignore[method-assign]
    verifier = CachedKeyVerifier(keys, ttl_s=60)
    for _ in range(3):
        identity = await verifier.verify(f"Bearer {created.api_key}")
        assert identity is not None
        assert identity.organization_id == created.organization_id
        assert await verifier.verify("Bearer sk-helicone-unknown") is None
    assert len(calls) == 2, "a warm key must not touch the database"
    assert await verifier.verify(None) is None
    assert await verifier.verify("Basic abc") is None


def test_bearer_parsing() -> None:
    assert bearer_token("Bearer  abc ") == "abc"
    assert bearer_token("bearer abc") == "abc"
    assert bearer_token("Token abc") is None
    assert bearer_token("Bearer " + "x" * 300) is None


def test_keys_made_before_permissions_are_read_write(engine: Engine) -> None:
    from alembic import command

    from heliograph.appdb.engine import alembic_config

    command.upgrade(alembic_config(engine), "0004")
    key = "sk-helicone-aaaaaaa-bbbbbbb-ccccccc-ddddddd"
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO organization (id, name, created_at) VALUES ('o', 'old', :t)"),
            {"t": datetime.now(UTC)},
        )
        connection.execute(
            text(
                "INSERT INTO helicone_api_keys (id, organization_id, api_key_hash, api_key_name,"
                " key_prefix, created_at) VALUES ('k', 'o', :hash, 'old', 'sk', :t)"
            ),
            {"hash": hash_key(key), "t": datetime.now(UTC)},
        )
    upgrade(engine)
    keys = KeyService(session_factory(engine))
    assert keys.lookup(key) == Identity("o", "k", "rw")
    (info,) = keys.list_keys("o")
    assert info.permissions == KeyPermissions.READ_WRITE
    assert info.last_used_at is None
    assert info.user_id is None


def test_permissions_rename_and_active_listing(engine: Engine) -> None:
    upgrade(engine)
    keys = KeyService(session_factory(engine))
    first = keys.create_organization("acme")
    reader = keys.create_key(first.organization_id, "reader", KeyPermissions.READ, user_id="u1")
    assert keys.lookup(reader.api_key) == Identity(first.organization_id, reader.key_id, "r")
    renamed = keys.rename_key(first.organization_id, reader.key_id, "eyes only")
    assert renamed is not None
    assert renamed.name == "eyes only"
    assert renamed.user_id == "u1"
    other = keys.create_organization("rival")
    assert keys.rename_key(other.organization_id, reader.key_id, "stolen") is None
    assert keys.revoke_key(first.organization_id, reader.key_id)
    assert keys.rename_key(first.organization_id, reader.key_id, "late") is None
    assert [k.name for k in keys.list_keys(first.organization_id)] == ["default", "eyes only"]
    assert [k.name for k in keys.list_keys(first.organization_id, active_only=True)] == ["default"]


def test_last_use_is_written_by_the_api_and_by_gateway_processes(engine: Engine) -> None:
    upgrade(engine)
    keys = KeyService(session_factory(engine))
    created = keys.create_organization("acme")
    other = keys.create_key(created.organization_id, "other")
    org = created.organization_id
    earlier = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    later = earlier + timedelta(minutes=5)

    def used(key_id: str) -> datetime | None:
        return {k.key_id: k.last_used_at for k in keys.list_keys(org)}[key_id]

    keys.touch({created.key_id: later})
    assert used(created.key_id) == later
    assert used(other.key_id) is None
    keys.touch({created.key_id: earlier})
    assert used(created.key_id) == later, "an older use never replaces a newer one"

    lookups = AppDbLookups(lookups_url(engine))
    try:
        even_later = later + timedelta(minutes=5)
        lookups.touch({created.key_id: earlier, other.key_id: even_later})
        assert used(created.key_id) == later
        assert used(other.key_id) == even_later, "as SQLAlchemy reads it back"
        lookups.touch({})
        lookups.touch({"no-such-key": even_later})
        assert lookups.lookup(created.api_key) is not None, "the connection still answers"
    finally:
        lookups.close()


def lookups_url(engine: Engine) -> str:
    """The URL `AppDbLookups` would be given for `engine`'s database."""
    if engine.dialect.name == "sqlite":
        return str(engine.url)
    with engine.connect() as connection:
        current = connection.execute(text("SELECT current_schema()")).scalar_one()
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{current}"
