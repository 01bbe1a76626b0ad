"""`Services`: every long-lived object built from `Settings`, opened and closed in order.

`server.py`, the CLI and the tests all start from here.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from heliograph.analytics.alert_metrics import AlertMetrics
from heliograph.analytics.store import AnalyticsStore, open_store
from heliograph.appdb.engine import create_app_engine, session_factory, upgrade
from heliograph.appdb.lookups import AppDbLookups
from heliograph.appdb.prompt_lookups import PromptLookups
from heliograph.appdb.provider_key_lookups import ProviderKeyLookups
from heliograph.appdb.proxy_lookups import ProxyKeyLookups
from heliograph.domain.gateway_config import operator_prices
from heliograph.domain.pricing import PriceOverride
from heliograph.ingest.inserter import BatchInserter, Storage
from heliograph.ingest.otlp_export import OtlpConfig, OtlpExporter
from heliograph.ingest.quarantine import Quarantine
from heliograph.ingest.rows import RowBuilder
from heliograph.ingest.spool import Spool
from heliograph.ingest.writer import LogWriter
from heliograph.providers.base import Provider
from heliograph.providers.registry import build_registry
from heliograph.services.accounts import AccountService, account_rules
from heliograph.services.alert_evaluator import AlertEvaluator
from heliograph.services.alerts import AlertService
from heliograph.services.audit import AuditLog
from heliograph.services.config_file import read_gateway_config
from heliograph.services.hidden_properties import HiddenProperties
from heliograph.services.keys import CachedKeyVerifier, KeyService
from heliograph.services.mailer import Mailer
from heliograph.services.metrics import MetricsService
from heliograph.services.organizations import OrganizationService
from heliograph.services.outbound import OutboundPolicy
from heliograph.services.playground import Playground
from heliograph.services.price_cache import PriceCache
from heliograph.services.prices import PriceOverrideService, Repricer
from heliograph.services.prompt_cache import PromptCache
from heliograph.services.prompts import PromptService
from heliograph.services.properties import PropertyService
from heliograph.services.provider_key_source import ProviderKeySource
from heliograph.services.provider_keys import ProviderKeyService
from heliograph.services.proxy_key_cache import ProxyKeyCache
from heliograph.services.ratelimits import CachedRuleSource, RateLimitRuleService
from heliograph.services.redaction import RedactionService
from heliograph.services.requests import RequestService
from heliograph.services.saved_queries import SavedQueryService
from heliograph.services.sessions import SessionService
from heliograph.services.sql_console import SqlConsole
from heliograph.services.throttle import Buckets, LoginThrottle
from heliograph.services.users import UserService
from heliograph.services.vault import Vault
from heliograph.services.webhook_delivery import WebhookDeliveryWorker
from heliograph.services.webhooks import WebhookService
from heliograph.services.weekly_report import WeeklyReports
from heliograph.settings import Settings
from heliograph.state.buckets import MemoryBuckets
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
    organizations: OrganizationService
    audit: AuditLog
    mailer: Mailer
    vault: Vault
    provider_keys: ProviderKeyService
    saved_queries: SavedQueryService
    prompts: PromptService


def open_app_db(settings: Settings, migrate: bool = True) -> AppDb:
    """The app DB, migrated to the newest schema unless `migrate` is false."""
    engine = create_app_engine(settings.resolved_database_url)
    if migrate:
        upgrade(engine)
    sessions = session_factory(engine)
    audit = AuditLog(sessions)
    mailer = Mailer(settings.smtp_url, settings.smtp_from)
    vault = Vault.from_settings(settings)
    organizations = OrganizationService(sessions, audit, mailer, settings)
    rules = account_rules(
        (settings.oidc_issuer, settings.oidc_client_id, settings.oidc_client_secret),
        settings.signup,
        settings.session_ttl_s,
        settings.password_reset_ttl_s,
        settings.oidc_domain_organization,
        settings.oidc_default_role,
    )
    return AppDb(
        engine,
        KeyService(sessions, audit),
        RateLimitRuleService(sessions),
        RedactionService(sessions, settings.key_cache_ttl_s),
        HiddenProperties(sessions),
        AccountService(sessions, rules, organizations, audit),
        organizations,
        audit,
        mailer,
        vault,
        ProviderKeyService(sessions, vault, audit),
        SavedQueryService(sessions, audit),
        prompts=PromptService(sessions, audit),
    )


def _say_unclaimed(accounts: AccountService) -> None:
    """Name the organizations nobody can sign in to yet, and how to claim one: sign-up never
    hands over an existing organization, since whoever came first would own its data."""
    for name in accounts.unclaimed_organizations()[:5]:
        log.warning(
            "organization %r has no members; to own it, run: heliograph users create"
            " --email you@example.com --org %r",
            name,
            name,
        )


def _login_buckets(settings: Settings) -> Buckets:
    """Sign-in attempts are counted in Redis when it is configured, so every API process agrees."""
    if settings.redis_url:
        from heliograph.state.redis_buckets import RedisBuckets

        return RedisBuckets(settings.redis_url, prefix="heliograph:auth:")
    return MemoryBuckets()


def _alerts(
    settings: Settings, app_db: AppDb, store: AnalyticsStore
) -> tuple[AlertService, AlertEvaluator]:
    """Alert rules, and their evaluator over the store (started with the services)."""
    policy = OutboundPolicy(settings.allowed_webhook_origins)
    alerts = AlertService(session_factory(app_db.engine), app_db.vault, app_db.audit, policy)
    metrics = AlertMetrics(store.engine)
    evaluator = AlertEvaluator(alerts, metrics, app_db.mailer, policy, settings.alert_interval_s)
    return alerts, evaluator


def _webhooks(settings: Settings, app_db: AppDb) -> tuple[WebhookService, WebhookDeliveryWorker]:
    """Webhooks, and the worker that delivers what stored requests owe them."""
    sessions = session_factory(app_db.engine)
    policy = OutboundPolicy(settings.allowed_webhook_origins)
    worker = WebhookDeliveryWorker(
        sessions, app_db.vault, policy, settings.webhook_retry_base_s, settings.webhook_give_up_s
    )
    webhooks = WebhookService(
        sessions, app_db.vault, app_db.audit, policy, settings.body_dir, worker.wake
    )
    return webhooks, worker


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
    saved_queries: SavedQueryService
    prompts: PromptService
    accounts: AccountService
    organizations: OrganizationService
    audit: AuditLog
    mailer: Mailer
    login_throttle: LoginThrottle
    vault: Vault
    provider_keys: ProviderKeyService
    proxy_keys: ProxyKeyCache  # what the in-process gateway resolves proxy keys with
    lookups: AppDbLookups  # the plain-SQL reads under `proxy_keys`, as a gateway process has
    own_keys: ProviderKeySource  # organizations' own provider keys, for the unified API
    price_cache: PriceCache  # price overrides: rows are priced at them, and `cents` charges
    prices: PriceOverrideService
    repricer: Repricer
    prompt_cache: PromptCache  # prompt versions the in-process gateway compiles bodies with
    playground: Playground
    alerts: AlertService
    alert_evaluator: AlertEvaluator  # started here, in the API process only
    weekly_reports: WeeklyReports
    webhooks: WebhookService
    webhook_delivery: WebhookDeliveryWorker  # started here, in the API process only
    otlp: OtlpExporter | None = None  # stored requests as spans, when HELIOGRAPH_OTLP_ENDPOINT

    @classmethod
    async def open(cls, settings: Settings) -> Services:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        otlp = OtlpConfig.from_settings(
            settings.otlp_endpoint,
            settings.otlp_headers,
            settings.resolved_api_url,
            include_bodies=settings.otlp_include_bodies,
        )
        telemetry = Telemetry()
        providers = build_registry(settings.provider_base_urls, os.environ)
        app_db = open_app_db(settings)
        app_db.vault.ensure_key()
        _say_unclaimed(app_db.accounts)
        lookups = AppDbLookups(settings.resolved_database_url)
        store = open_store(settings.clickhouse_url, settings.resolved_analytics_dir)
        await store.migrate()
        by_name = {provider.name: provider for provider in providers.values()}
        price_cache = PriceCache(lookups)
        # The configuration file's prices stand behind each organization's own overrides.
        own_prices = operator_prices(read_gateway_config(settings.config))

        def overrides_for(organization_id: str) -> Sequence[PriceOverride]:
            found = price_cache.for_organization(organization_id)
            return [*found, *own_prices] if own_prices else found

        rows = RowBuilder(
            by_name,
            settings.body_dir,
            settings.max_stored_body_bytes,
            app_db.redaction.redactor_for,
            overrides_for,
        )
        storage = Storage(
            insert=store.insert_requests_blocking,
            answers=store.ping_blocking,
            stored_times=store.stored_request_times_blocking,
            write_bodies=rows.write_deferred_bodies,
        )
        quarantine = Quarantine(settings.data_dir / "quarantine", telemetry.quarantined)
        inserter = BatchInserter(storage, Spool(settings.spool_dir), quarantine, telemetry)
        exporter = OtlpExporter(otlp) if otlp is not None else None
        if exporter is not None:  # told of rows once stored; never in the way of ingest
            inserter.on_stored.append(exporter.rows_stored)
            exporter.start()
        webhooks, webhook_delivery = _webhooks(settings, app_db)
        inserter.on_stored.append(webhooks.rows_stored)  # enqueued once stored
        webhooks.rules.start()
        await webhook_delivery.start()
        writer = LogWriter(
            inserter,
            rows.build,
            flush_rows=settings.flush_rows,
            flush_interval_ms=settings.flush_interval_ms,
            queue_max=settings.queue_max,
        )
        await writer.start()
        metrics = MetricsService(store)
        weekly_reports = WeeklyReports(
            session_factory(app_db.engine), metrics, app_db.organizations, app_db.mailer
        )
        if settings.weekly_report:
            weekly_reports.start()
        alerts, alert_evaluator = _alerts(settings, app_db, store)
        alert_evaluator.start()
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
            metrics=metrics,
            properties=PropertyService(store, app_db.hidden_properties),
            sql=SqlConsole(store),
            accounts=app_db.accounts,
            organizations=app_db.organizations,
            audit=app_db.audit,
            mailer=app_db.mailer,
            login_throttle=LoginThrottle(
                _login_buckets(settings),
                settings.login_attempts_per_account,
                settings.login_attempts_per_address,
                settings.login_window_s,
            ),
            vault=app_db.vault,
            provider_keys=app_db.provider_keys,
            saved_queries=app_db.saved_queries,
            prompts=app_db.prompts,
            proxy_keys=ProxyKeyCache(
                ProxyKeyLookups(lookups), app_db.vault, settings.key_cache_ttl_s
            ),
            lookups=lookups,
            own_keys=ProviderKeySource(
                ProviderKeyLookups(lookups), app_db.vault, settings.key_cache_ttl_s
            ),
            price_cache=price_cache,
            prices=PriceOverrideService(session_factory(app_db.engine), app_db.audit, price_cache),
            repricer=Repricer(store, by_name, price_cache),
            prompt_cache=PromptCache(PromptLookups(lookups), settings.key_cache_ttl_s),
            playground=Playground(
                settings,
                session_factory(app_db.engine),
                app_db.prompts,
                app_db.vault,
                app_db.audit,
            ),
            alerts=alerts,
            alert_evaluator=alert_evaluator,
            weekly_reports=weekly_reports,
            webhooks=webhooks,
            webhook_delivery=webhook_delivery,
            otlp=exporter,
        )

    async def close(self) -> None:
        """Stop re-checking keys and rules, flush pending logs, then close the stores."""
        await self.alert_evaluator.stop()
        await self.verifier.close()
        await self.rule_source.close()
        await self.proxy_keys.close()
        await self.own_keys.close()
        await self.prompt_cache.close()
        await self.weekly_reports.close()
        await self.writer.stop()
        if self.otlp is not None:  # after the writer: its last rows are exported too
            await asyncio.to_thread(self.otlp.close)
        await self.webhooks.rules.close()
        await self.webhook_delivery.close()  # after the writer: its last rows are enqueued
        await self.store.close()
        await self.login_throttle.close()
        self.price_cache.close()
        self.lookups.close()
        self.engine.dispose()
