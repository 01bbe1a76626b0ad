"""`Services`: every long-lived object built from `Settings`, opened and closed in order.

`server.py`, the CLI and the tests all start from here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine

from heliograph.analytics.store import AnalyticsStore, open_store
from heliograph.appdb.engine import create_app_engine, session_factory, upgrade
from heliograph.ingest.inserter import BatchInserter, Storage
from heliograph.ingest.quarantine import Quarantine
from heliograph.ingest.rows import RowBuilder
from heliograph.ingest.spool import Spool
from heliograph.ingest.writer import LogWriter
from heliograph.providers.base import Provider
from heliograph.providers.registry import build_registry
from heliograph.services.accounts import AccountService
from heliograph.services.audit import AuditLog
from heliograph.services.hidden_properties import HiddenProperties
from heliograph.services.keys import CachedKeyVerifier, KeyService
from heliograph.services.mailer import Mailer
from heliograph.services.metrics import MetricsService
from heliograph.services.properties import PropertyService
from heliograph.services.ratelimits import CachedRuleSource, RateLimitRuleService
from heliograph.services.redaction import RedactionService
from heliograph.services.requests import RequestService
from heliograph.services.sessions import SessionService
from heliograph.services.sql_console import SqlConsole
from heliograph.services.users import UserService
from heliograph.settings import Settings
from heliograph.telemetry import Telemetry

log = logging.getLogger("heliograph")


@dataclass
class AppDb:
    """The app DB engine and the services over it."""

    engine: Engine
    keys: KeyService
    rules: RateLimitRuleService
    redaction: RedactionService
    hidden_properties: HiddenProperties
    accounts: AccountService
    audit: AuditLog


def open_app_db(settings: Settings, migrate: bool = True) -> AppDb:
    """The app DB, migrated to the newest schema unless `migrate` is false."""
    engine = create_app_engine(settings.resolved_database_url)
    if migrate:
        upgrade(engine)
    sessions = session_factory(engine)
    return AppDb(
        engine,
        KeyService(sessions),
        RateLimitRuleService(sessions),
        RedactionService(sessions, settings.key_cache_ttl_s),
        HiddenProperties(sessions),
        AccountService(sessions),
        AuditLog(sessions),
    )


@dataclass
class Services:
    settings: Settings
    telemetry: Telemetry
    providers: dict[str, Provider]
    engine: Engine
    keys: KeyService
    verifier: CachedKeyVerifier
    rules: RateLimitRuleService
    rule_source: CachedRuleSource
    redaction: RedactionService
    store: AnalyticsStore
    writer: LogWriter
    requests: RequestService
    sessions: SessionService
    users: UserService
    metrics: MetricsService
    properties: PropertyService
    sql: SqlConsole
    accounts: AccountService
    audit: AuditLog
    mailer: Mailer

    @classmethod
    async def open(cls, settings: Settings) -> Services:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        telemetry = Telemetry()
        providers = build_registry(settings.provider_base_urls)
        app_db = open_app_db(settings)
        store = open_store(settings.clickhouse_url, settings.resolved_analytics_dir)
        await store.migrate()
        by_name = {provider.name: provider for provider in providers.values()}
        rows = RowBuilder(
            by_name,
            settings.body_dir,
            settings.max_stored_body_bytes,
            app_db.redaction.redactor_for,
        )
        storage = Storage(
            insert=store.insert_requests_blocking,
            answers=store.ping_blocking,
            stored_times=store.stored_request_times_blocking,
            write_bodies=rows.write_deferred_bodies,
        )
        quarantine = Quarantine(settings.data_dir / "quarantine", telemetry.quarantined)
        inserter = BatchInserter(storage, Spool(settings.spool_dir), quarantine, telemetry)
        writer = LogWriter(
            inserter,
            rows.build,
            flush_rows=settings.flush_rows,
            flush_interval_ms=settings.flush_interval_ms,
            queue_max=settings.queue_max,
        )
        await writer.start()
        return cls(
            settings=settings,
            telemetry=telemetry,
            providers=providers,
            engine=app_db.engine,
            keys=app_db.keys,
            verifier=CachedKeyVerifier(app_db.keys, settings.key_cache_ttl_s),
            rules=app_db.rules,
            rule_source=CachedRuleSource(app_db.rules, settings.key_cache_ttl_s),
            redaction=app_db.redaction,
            store=store,
            writer=writer,
            requests=RequestService(store, settings.body_dir),
            sessions=SessionService(store),
            users=UserService(store),
            metrics=MetricsService(store),
            properties=PropertyService(store, app_db.hidden_properties),
            sql=SqlConsole(store),
            accounts=app_db.accounts,
            audit=app_db.audit,
            mailer=Mailer(settings.smtp_url, settings.smtp_from),
        )

    async def close(self) -> None:
        """Stop re-checking keys and rules, flush pending logs, then close the stores."""
        await self.verifier.close()
        await self.rule_source.close()
        await self.writer.stop()
        await self.store.close()
        self.engine.dispose()
