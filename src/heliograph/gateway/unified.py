"""The unified API's planning: an OpenAI chat request's `model` string becomes the targets to try,
in order, one per route, each with the body its provider speaks and the key it takes (the
organization's own from the vault first, else the operator's). Routes the gateway cannot call
(no key, or a request that provider's API cannot express) are passed over, saying why."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from heliograph.domain.errors import InvalidInput
from heliograph.domain.gateway_config import GatewayConfig
from heliograph.gateway.attempts import RETRYABLE, Hop, Target
from heliograph.gateway.cloud_auth import AwsAuth, GoogleAuth, aws_credentials
from heliograph.gateway.plan import Plan
from heliograph.gateway.ports import ProviderKeySource
from heliograph.gateway.routing import Router
from heliograph.gateway.upstreams import Upstream, build_upstreams, for_deployment
from heliograph.providers.base import Provider
from heliograph.providers.model_registry import ModelRegistry, Route, build_model_registry
from heliograph.translation.dialects import VertexChat

CHAT_PATH = "/v1/chat/completions"
# What a body may say to name its model: a model string, never longer than its grammar allows.
MAX_ROUTES = 20


class InvalidChatRequest(InvalidInput):
    code = "invalid_request_error"


class KeysUnavailable(InvalidInput):
    """The organization's stored provider keys cannot be read (the app DB is away): answering
    with the operator's key instead would bill the wrong account."""

    status = 503
    code = "provider_keys_unavailable"


class NoUsableRoute(InvalidInput):
    """Every route of the model was passed over; the message lists why, route by route."""

    code = "no_usable_route"


@dataclass(frozen=True, slots=True)
class Grant:
    """A proxy key's provider (`Provider.name`) and the stored key it stands for."""

    provider_name: str
    secret: str


@dataclass(frozen=True, slots=True)
class UnifiedRequest:
    """A parsed chat request: its JSON object and whether it streams."""

    chat: dict[str, Any]
    stream: bool
    include_usage: bool  # the client asked for the usage chunk


def read_chat(body: bytes) -> UnifiedRequest:
    """The chat request in `body`, or the 400 saying what is wrong with it."""
    try:
        chat = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidChatRequest("the request body must be a JSON object") from None
    if not isinstance(chat, dict):
        raise InvalidChatRequest("the request body must be a JSON object")
    if not isinstance(chat.get("model"), str) or not chat["model"].strip():
        raise InvalidChatRequest("`model` must be a non-empty string")
    if not isinstance(chat.get("messages"), list) or not chat["messages"]:
        raise InvalidChatRequest("`messages` must be a non-empty list")
    stream = chat.get("stream") is True
    options = chat.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return UnifiedRequest(chat, stream, include_usage)


class UnifiedPlanner:
    def __init__(
        self,
        registry: ModelRegistry,
        router: Router,
        upstreams: Mapping[str, Upstream],
        providers: Mapping[str, Provider],
        environ: Mapping[str, str],
        keys: ProviderKeySource | None = None,
        token_uris: Collection[str] = (),
    ) -> None:
        self._registry = registry
        self._router = router
        self._upstreams = upstreams
        self._providers = providers
        self._environ = environ
        self._keys = keys
        self._aws = AwsAuth(environ, keys)
        self._google_auth = GoogleAuth(environ, keys, token_uris)

    @property
    def router(self) -> Router:
        return self._router

    async def sign_passthrough(self, organization_id: str, plan: Plan, stored: str | None) -> None:
        """Sign a Bedrock call made on the passthrough route (a boto3 client's, whose own
        signature covers the gateway's host) with `stored` credentials (a proxy key's) or the
        organization's or operator's."""
        if stored is not None:
            credentials = aws_credentials(stored)
        else:
            credentials = await self._aws.credentials(organization_id)
        plan.targets[:] = [self._aws.signed(target, credentials) for target in plan.targets]

    async def plan(
        self, organization_id: str, request: UnifiedRequest, grant: Grant | None = None
    ) -> Plan:
        """The targets for `request`; a proxy key's `grant` keeps only its provider's routes,
        with its key. Raises `InvalidInput` subclasses (400s; 429 when every deployment is full)."""
        choice = self._registry.parse(request.chat["model"])
        routes = self._router.order(self._registry.resolve(choice))[:MAX_ROUTES]
        targets: list[Target] = []
        skipped: list[str] = []
        for route in routes:
            target = await self._target(organization_id, request, route, grant, skipped)
            if target is not None:
                targets.append(target)
        if not targets:
            raise NoUsableRoute("no provider could take this request: " + "; ".join(skipped))
        first = targets[0].hop
        assert first is not None
        return Plan(first.provider, CHAT_PATH, request.stream, False, targets)

    async def _target(
        self,
        organization_id: str,
        request: UnifiedRequest,
        route: Route,
        grant: Grant | None,
        skipped: list[str],
    ) -> Target | None:
        label = f"{route.model}/{route.provider}"
        upstream = self._upstream(route)
        if upstream is None:
            skipped.append(f"{label}: provider not configured on this gateway")
            return None
        if grant is not None and upstream.provider.name != grant.provider_name:
            skipped.append(f"{label}: the proxy key is for {grant.provider_name}")
            return None
        try:
            if upstream.auth == "key":
                return await self._keyed(organization_id, request, route, upstream, grant)
            if upstream.auth == "aws":
                return await self._signed(organization_id, request, route, upstream)
            return await self._google(organization_id, request, route, upstream)
        except InvalidInput as refused:  # no credentials, or a request this API cannot say
            skipped.append(f"{label}: {refused}")
            return None

    async def _keyed(
        self,
        organization_id: str,
        request: UnifiedRequest,
        route: Route,
        upstream: Upstream,
        grant: Grant | None,
    ) -> Target:
        provider = upstream.provider
        secret = grant.secret if grant else await self._secret(organization_id, provider, upstream)
        if upstream.key_header is not None and not secret:
            raise NoUsableRoute(f"no {provider.name} key stored or configured")
        outgoing = upstream.dialect.request(request.chat, route.model, request.stream)
        hop = Hop(provider, route, upstream.dialect, outgoing.ask_usage, request.include_usage)
        url = upstream.origin + outgoing.path
        headers = upstream.key_headers(secret)
        return Target(url, upstream.origin, headers, outgoing.body, RETRYABLE, hop)

    async def _signed(
        self, organization_id: str, request: UnifiedRequest, route: Route, upstream: Upstream
    ) -> Target:
        """A Bedrock call, signed with the organization's AWS key or the operator's."""
        credentials = await self._aws.credentials(organization_id)
        outgoing = upstream.dialect.request(request.chat, route.model, request.stream)
        hop = Hop(upstream.provider, route, upstream.dialect, False, request.include_usage)
        url = upstream.origin + outgoing.path
        headers = upstream.key_headers(None)
        target = Target(url, upstream.origin, headers, outgoing.body, RETRYABLE, hop)
        return self._aws.signed(target, credentials)

    async def _google(
        self, organization_id: str, request: UnifiedRequest, route: Route, upstream: Upstream
    ) -> Target:
        """A Vertex AI call, in the project of the service account whose token it carries."""
        token, project = await self._google_auth.bearer(organization_id)
        dialect = VertexChat(project, self._google_auth.location)
        outgoing = dialect.request(request.chat, route.model, request.stream)
        hop = Hop(upstream.provider, route, dialect, False, request.include_usage)
        headers = [*upstream.key_headers(None), ("Authorization", f"Bearer {token}")]
        url = upstream.origin + outgoing.path
        return Target(url, upstream.origin, headers, outgoing.body, RETRYABLE, hop)

    def _upstream(self, route: Route) -> Upstream | None:
        upstream = self._upstreams.get(route.provider)
        if route.deployment is None:
            return upstream
        return for_deployment(upstream, route.deployment, self._providers, self._environ)

    async def _secret(
        self, organization_id: str, provider: Provider, upstream: Upstream
    ) -> str | None:
        if self._keys is not None and upstream.key_header is not None:
            try:
                stored = await self._keys.secret(organization_id, provider.name)
            except Exception as error:  # the store's own error types are not the gateway's
                message = f"cannot read the organization's {provider.name} key; try again"
                raise KeysUnavailable(message) from error
            if stored:
                return stored
        return upstream.env_key


def build_planner(
    providers: Mapping[str, Provider],
    config: GatewayConfig,
    environ: Mapping[str, str],
    keys: ProviderKeySource | None = None,
    token_uris: Collection[str] = (),
) -> UnifiedPlanner:
    """The unified API's planner over the built-in providers and the configuration's;
    `token_uris`: OAuth endpoints besides Google's that service accounts may name."""
    upstreams = build_upstreams(providers, config, environ)
    registry = build_model_registry(config, frozenset(upstreams) | {"azure"})
    return UnifiedPlanner(registry, Router(config), upstreams, providers, environ, keys, token_uris)
