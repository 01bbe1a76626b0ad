"""The root of every error Heliograph raises on purpose, and the map of them all.

    HeliographError
    ├── InvalidInput                    the caller sent something refused: `status`, `code`
    │   ├── FilterError                 domain/filters.py: a `FilterNode` or sort
    │   ├── QueryError                  domain/queries.py: paging, time ranges, spans, names
    │   ├── RejectedQuery               domain/sql_console.py: outside the console's allow-lists
    │   ├── ConsoleError                services/sql_console.py: the engine refused a console query
    │   ├── InvalidPolicy               domain/ratelimit.py: a rate-limit policy's text
    │   ├── UnknownKind                 domain/redaction.py: not a redaction kind
    │   ├── InvalidCacheSettings        domain/cache.py: `Helicone-Cache-*`
    │   ├── InvalidOptions              gateway/headers.py: caps on `Helicone-*`
    │   ├── InvalidPath                 gateway/plan.py: the route's path
    │   ├── TargetRejected              gateway/targets.py: `Helicone-Target-Url`
    │   ├── InvalidFallbacks            gateway/attempts.py: `Helicone-Fallbacks`
    │   ├── InvalidLogMessage           ingest/log_message.py: a Helicone log message
    │   ├── InvalidAsyncLog             ingest/async_log.py: a Helicone async log (`/oai/v1/log`)
    │   ├── InvalidExport (413, 415)    ingest/otlp.py: an OTLP trace export
    │   ├── RefusedRow                  ingest/helicone_rows.py: a row of a Helicone export
    │   ├── WrongLayout                 ingest/helicone_files.py: not a Helicone export file
    │   ├── StrictStop                  services/helicone_import.py: `--strict` met a bad row
    │   ├── InvalidBatch                ingest/wire.py: a shipped batch of records
    │   ├── NotAuthenticated (401)      domain/access.py: no valid key or live session
    │   ├── Forbidden (403)             domain/access.py: a capability the caller lacks, CSRF
    │   │   └── SignupRefused           services/accounts.py: the sign-up policy, an invitation
    │   ├── InvalidEmail, WeakPassword  services/accounts.py, services/passwords.py
    │   ├── Throttled (429)             services/throttle.py: sign-in attempts, with Retry-After
    │   ├── NotFound (404), Conflict    services/organizations.py: members, invitations
    │   ├── InvalidKeyInput, KeyNotFound  services/provider_keys.py: provider and proxy keys
    │   ├── SsoFailed                   services/sso.py: the issuer, a flow or an ID token
    │   ├── InvalidPrice, PriceOverrideNotFound (404), TooManyOverrides, OverrideExists (409),
    │   │   RecomputeBusy (429)         services/prices.py: price overrides, recompute ranges
    │   ├── TooManySavedQueries (409)   services/saved_queries.py: the per-organization cap
    │   ├── AlertError, TooManyAlerts (409)  domain/alerts.py: a rule's fields and channels, the cap
    │   ├── AlertNotFound (404)         services/alerts.py: another organization's or no rule
    │   ├── WebhookConfigError, TooManyWebhooks (409)  domain/webhooks.py: sample rate,
    │   │                               property filters, the per-organization cap
    │   ├── TooManyProperties (409)     services/requests.py: properties of one request
    │   ├── PromptError                 domain/prompts.py: a prompt body, reference or input
    │   │   ├── UnknownPrompt, MissingInput, WrongInputType
    │   │   └── PromptTooLarge (413)    a version's body, or a compiled one, over its cap
    │   ├── PromptNotFound (404), PromptExists (409), PromptLimitReached (409)
    │   │                               services/prompts.py: prompts, versions, environments
    │   ├── PromptsUnavailable (503)    gateway/prompts.py: the app DB did not say what a prompt is
    │   ├── GatewayUnreachable (502)    services/playground.py: the playground's gateway call
    │   └── WrongProvider (403)         gateway/proxy.py: a proxy key on another provider's route
    ├── StoreUnavailable                analytics/executor.py: the engine could not answer (503)
    ├── ConsoleBusy                     services/sql_console.py: one console query at a time (429)
    ├── VaultError                      services/vault.py: no usable secret key, or the wrong one
    └── StoreDown, Undecided            ingest/inserter.py: a batch waits in the spool

Each module defines the subclasses it raises next to the rule it enforces; the edges answer any
`InvalidInput` with its own status, code and message (the API in `api/envelope.py`, the gateway
in `gateway/proxy.py`), so a new rule needs no new handler. `settings.InvalidSetting` and
`runtime.PortInUse` stand outside the tree: they stop a start-up, in modules that import nothing
of Heliograph's.
"""

from __future__ import annotations


class HeliographError(Exception):
    """Raised by Heliograph on purpose; anything else reaching an edge is a bug."""


class InvalidInput(HeliographError, ValueError):
    """The caller's input is refused; the message says what is wrong, written for the caller."""

    status: int = 400
    code: str = "invalid_request"
