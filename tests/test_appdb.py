"""The app DB on SQLite and on PostgreSQL: migrations up and down, organizations and keys, and the
key verifier's cache."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, inspect, text

from conftest import POSTGRES_URL
from heliograph.appdb.engine import create_app_engine, downgrade_all, session_factory, upgrade
from heliograph.appdb.urls import normalise_url
from heliograph.domain.keys import KEY_PREFIX, bearer_token, hash_key
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
