"""The provider-key vault: master keys from the environment or a 0600 file made once, AES-GCM
bound to the organization and row, a clear refusal under the wrong key; a stored provider key
in no file of the data directory in clear (nor in a PostgreSQL row, nor in the log); and
`heliograph secrets rotate`, after which the keys still work."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from conftest import Fake, Heliograph
from heliograph.appdb.models import Alert, ProviderKey, Webhook
from heliograph.cli.main import cli
from heliograph.domain.alerts import WebhookChannel
from heliograph.services.audit import SYSTEM, AuditQuery
from heliograph.services.container import open_app_db
from heliograph.services.vault import (
    Vault,
    VaultError,
    key_from_text,
    key_id_of,
    new_key_text,
)
from heliograph.settings import load_settings
from test_proxy_keys import SECRET, add_provider_key, add_proxy_key, chat

PASSPHRASE = "correct horse battery staple, thirty-two chars+"


def test_master_keys_come_from_base64_or_a_long_passphrase() -> None:
    text = new_key_text()
    assert len(key_from_text(text)) == 32
    assert key_from_text(text) == key_from_text(text.rstrip("="))
    stretched = key_from_text(PASSPHRASE)
    assert len(stretched) == 32
    assert stretched == key_from_text(PASSPHRASE)
    assert stretched != key_from_text(PASSPHRASE + "!")
    for bad in ("", "short", "x" * 31):
        with pytest.raises(VaultError, match="32"):
            key_from_text(bad)


def test_the_key_file_is_made_once_with_mode_0600_and_said_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "data" / "secret.key"
    vault = Vault("", path)
    with caplog.at_level(logging.WARNING, logger="heliograph.vault"):
        vault.ensure_key()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    written = path.read_text()
    assert [record.getMessage() for record in caplog.records if str(path) in record.getMessage()]
    assert all(written.strip() not in record.getMessage() for record in caplog.records)
    caplog.clear()
    Vault("", path).ensure_key()
    assert path.read_text() == written, "an existing key is never replaced"
    assert not caplog.records
    assert vault.key_id == key_id_of(key_from_text(written))


def test_a_key_from_the_environment_writes_no_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    vault = Vault(PASSPHRASE, path)
    vault.ensure_key()
    assert not path.exists()
    assert vault.from_environment
    assert vault.key_id == key_id_of(key_from_text(PASSPHRASE))
    with pytest.raises(VaultError, match="HELIOGRAPH_SECRET_KEY"):
        Vault("too short", path).ensure_key()


def test_a_sealed_secret_opens_only_in_its_row_under_its_key(tmp_path: Path) -> None:
    vault = Vault(PASSPHRASE, tmp_path / "unused")
    sealed = vault.seal(SECRET, "org-1", "row-1")
    again = vault.seal(SECRET, "org-1", "row-1")
    assert sealed.nonce != again.nonce
    assert len(sealed.nonce) == 12
    assert sealed.ciphertext != again.ciphertext
    assert SECRET.encode() not in sealed.ciphertext
    assert vault.open(sealed, "org-1", "row-1") == SECRET
    for organization_id, row_id in [("org-1", "row-2"), ("org-2", "row-1")]:
        with pytest.raises(VaultError, match="does not decrypt"):
            vault.open(sealed, organization_id, row_id)
    other = Vault(new_key_text(), tmp_path / "unused")
    with pytest.raises(VaultError, match=f"encrypted under secret key {sealed.key_id}"):
        other.open(sealed, "org-1", "row-1")


def files_holding(root: Path, needle: bytes) -> list[Path]:
    """Every file under `root` holding `needle`. The analytics store merges parts while we walk:
    a file or folder gone by the time it is read held nothing that stays (os.walk skips a
    vanished folder)."""
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            try:
                if needle in path.read_bytes():
                    found.append(path)
            except (FileNotFoundError, IsADirectoryError):
                continue
    return found


async def test_a_stored_provider_key_is_nowhere_in_clear(
    heliograph_on_each_db: Heliograph, fake: Fake, caplog: pytest.LogCaptureFixture
) -> None:
    heliograph = heliograph_on_each_db
    settings = heliograph.running.services.settings
    caplog.set_level(logging.DEBUG)
    provider_key_id = await add_provider_key(heliograph)
    _, proxy_key = await add_proxy_key(heliograph, provider_key_id)
    status, _, request_id = await chat(heliograph.gateway, proxy_key)
    assert status == 200
    await heliograph.wait_for(request_id, timeout_s=5)  # the call is in the analytics store
    assert fake.seen.requests[-1]["headers"]["authorization"] == f"Bearer {SECRET}"

    # The data directory, the SQLite app DB (a file beside it in these tests) with its WAL, and
    # the analytics store's files.
    sqlite = settings.resolved_database_url.startswith("sqlite:///")
    app_db_dir = Path(settings.resolved_database_url.removeprefix("sqlite:///")).parent
    roots = {settings.data_dir, settings.resolved_analytics_dir, *([app_db_dir] if sqlite else [])}
    for root in roots:
        assert files_holding(root, SECRET.encode()) == [], root
    if sqlite:  # the walk does read the app DB: the last four characters are there
        assert any(p.name.startswith("app.db") for p in files_holding(app_db_dir, b"WXYZ"))
    assert all(SECRET not in record.getMessage() for record in caplog.records)
    with heliograph.running.services.engine.connect() as connection:
        row = connection.execute(select(ProviderKey)).one()
    assert all(SECRET.encode() not in str(value).encode() for value in row)
    assert SECRET.encode() not in bytes(row.ciphertext)
    assert row.last4 == SECRET[-4:]


async def test_rotating_the_key_file_keeps_keys_working(
    heliograph_on_each_db: Heliograph, fake: Fake
) -> None:
    heliograph = heliograph_on_each_db
    services = heliograph.running.services
    settings = services.settings
    provider_key_id = await add_provider_key(heliograph)
    _, proxy_key = await add_proxy_key(heliograph, provider_key_id)
    assert (await chat(heliograph.gateway, proxy_key))[0] == 200
    # A webhook's signing key and an alert's channels are sealed by the same vault.
    hook = {"destination": "https://hooks.example.com/in", "config": {"sampleRate": 0}}
    status, created = await heliograph.api_post("/v1/webhooks", hook)
    assert status == 201, created
    webhook = created["data"]
    channels = [{"type": "webhook", "url": "https://alerts.example.com/in"}]
    rule = {"name": "spend", "metric": "cost", "threshold": 5, "window_minutes": 60}
    rule["channels"] = channels
    status, created = await heliograph.api_post("/v1/alerts", rule)
    assert status == 201, created
    alert = created["data"]
    before = settings.secret_key_file.read_text()

    env = {"HELIOGRAPH_DATABASE_URL": settings.database_url, "HELIOGRAPH_SECRET_KEY": ""}
    result = CliRunner().invoke(
        cli, ["secrets", "rotate", "--data-dir", str(settings.data_dir)], env=env
    )
    assert result.exit_code == 0, result.output
    after = settings.secret_key_file.read_text()
    new_id = key_id_of(key_from_text(after))
    assert after != before
    assert stat.S_IMODE(settings.secret_key_file.stat().st_mode) == 0o600
    moved = "1 provider keys, 1 webhooks, 1 alerts"
    assert f"re-encrypted {moved} under secret key {new_id}" in result.output
    assert after.strip() not in result.output
    assert [p.name for p in settings.data_dir.iterdir() if p.name.endswith(".tmp")] == []
    with services.engine.connect() as connection:
        for model in (ProviderKey, Webhook, Alert):
            assert connection.execute(select(model.secret_key_id)).scalar_one() == new_id
    _, listed = await heliograph.api_get("/v1/webhooks")
    assert listed["data"][0]["hmac_key"] == webhook["hmac_key"]
    _, shown = await heliograph.api_get(f"/v1/alerts/{alert['id']}")
    assert shown["data"]["channels"] == alert["channels"]  # the URL's path masked, as before
    opened = services.alerts.get(heliograph.organization_id, alert["id"]).channels
    assert opened == (WebhookChannel(channels[0]["url"]),)

    services.proxy_keys.forget()  # decrypt again, now under the new key the file holds
    assert (await chat(heliograph.gateway, proxy_key))[0] == 200
    assert fake.seen.requests[-1]["headers"]["authorization"] == f"Bearer {SECRET}"
    added = await add_provider_key(heliograph, "anthropic", "sk-ant-after-rotation-1")
    with services.engine.connect() as connection:
        key_id = select(ProviderKey.secret_key_id).where(ProviderKey.id == added)
        assert connection.execute(key_id).scalar_one() == new_id
    lines = services.audit.query(AuditQuery(heliograph.organization_id, action="secrets.rotate"))
    assert len(lines) == 1
    moved_counts = {"provider_keys": 1, "webhooks": 1, "alerts": 1}
    assert lines[0].details == {"secret_key_id": new_id, **moved_counts}


def test_rotating_a_key_from_the_environment_prints_the_new_one(
    tmp_path: Path, database_url: str
) -> None:
    old = new_key_text()
    settings = load_settings(
        {}, data_dir=tmp_path / "data", database_url=database_url, secret_key=old
    )
    settings.data_dir.mkdir(parents=True)
    app_db = open_app_db(settings)
    organization_id = app_db.keys.create_organization("rotation").organization_id
    created = app_db.provider_keys.create(organization_id, "openai", SECRET, "main", SYSTEM)
    app_db.engine.dispose()
    env = {
        "HELIOGRAPH_DATABASE_URL": database_url,
        "HELIOGRAPH_DATA_DIR": str(settings.data_dir),
        "HELIOGRAPH_SECRET_KEY": old,
    }
    runner = CliRunner()

    refused = runner.invoke(cli, ["secrets", "rotate", "--new-key", "short"], env=env)
    assert refused.exit_code != 0
    assert "32" in refused.output
    wrong = runner.invoke(
        cli, ["secrets", "rotate"], env={**env, "HELIOGRAPH_SECRET_KEY": PASSPHRASE}
    )
    assert wrong.exit_code != 0
    assert "HELIOGRAPH_SECRET_KEY" in wrong.output

    result = runner.invoke(cli, ["secrets", "rotate"], env=env)
    assert result.exit_code == 0, result.output
    new = result.output.split("store it now): ", 1)[1].split()[0]
    assert "set HELIOGRAPH_SECRET_KEY to the new key" in result.output
    assert not settings.secret_key_file.exists()

    given = runner.invoke(
        cli,
        ["secrets", "rotate", "--new-key", PASSPHRASE],
        env={**env, "HELIOGRAPH_SECRET_KEY": new},
    )
    assert given.exit_code == 0, given.output
    assert PASSPHRASE not in given.output
    app_db = open_app_db(settings, migrate=False)
    try:
        with app_db.engine.connect() as connection:
            row = connection.execute(select(ProviderKey)).one()
        vault = Vault(PASSPHRASE, settings.secret_key_file)
        from heliograph.services.vault import Sealed

        sealed = Sealed(bytes(row.ciphertext), bytes(row.nonce), row.secret_key_id)
        assert vault.open(sealed, organization_id, created.id) == SECRET
        assert os.environ.get("HELIOGRAPH_SECRET_KEY") != PASSPHRASE
    finally:
        app_db.engine.dispose()
