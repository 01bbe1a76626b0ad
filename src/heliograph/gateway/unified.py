"""The unified API's planning: an OpenAI-shaped request's `model` string (chat completions, the
Responses API through chat, embeddings) becomes the targets to try, in order, one per route,
each with the body its provider speaks and the key it takes (the organization's own from the
vault first, else the operator's). Routes the gateway cannot call (no key, or a request that
provider's API cannot express) are passed over, saying why."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from heliograph.domain.errors import InvalidInput
from heliograph.domain.gateway_config import GatewayConfig
from heliograph.gateway.attempts import RETRYABLE, Hop, Target
from heliograph.gateway.cloud_auth import (
    AwsAuth,
    GoogleAuth,
    KeysUnavailable,
    aws_credentials,
    stored_secret,
)
from heliograph.gateway.plan import Plan
from heliograph.gateway.ports import ProviderKeySource
from heliograph.gateway.routing import Router
from heliograph.gateway.upstreams import Upstream, build_upstreams, for_deployment
from heliograph.providers.base import Provider
from heliograph.providers.model_registry import ModelRegistry, Route, build_model_registry
from heliograph.translation.dialects import (
    AzureChat,
    Dialect,
    GeminiGenerate,
    OpenAIChat,
    VertexChat,
)
from heliograph.translation.embeddings import (
    AzureEmbeddings,
    GeminiEmbeddings,
    OpenAIEmbeddings,
    check_input,
)
from heliograph.translation.responses import responses_to_chat

CHAT_PATH = "/v1/chat/completions"
RESPONSES_PATH = "/v1/responses"
EMBEDDINGS_PATH = "/v1/embeddings"
UNIFIED_PATHS = (CHAT_PATH, RESPONSES_PATH, EMBEDDINGS_PATH)
# The most routes one request tries (a model string's candidates on every provider serving each).
MAX_ROUTES = 20


class InvalidChatRequest(InvalidInput):
    code = "invalid_request_error"


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
    """A parsed request: the body providers are asked with (chat or embeddings) and how."""

    chat: dict[str, Any]
    stream: bool
    include_usage: bool  # the client asked for the usage chunk
    path: str = CHAT_PATH
    responses: dict[str, Any] | None = None  # the Responses API request the chat stands for

    @property
    def embeddings(self) -> bool:
        return self.path == EMBEDDINGS_PATH


def read_request(path: str, body: bytes) -> UnifiedRequest:
    """The request in `body` for unified route `path`, or the 400 saying what is wrong."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidChatRequest("the request body must be a JSON object") from None
    if not isinstance(document, dict):
        raise InvalidChatRequest("the request body must be a JSON object")
    if not isinstance(document.get("model"), str) or not document["model"].strip():
        raise InvalidChatRequest("`model` must be a non-empty string")
    if path == EMBEDDINGS_PATH:
        check_input(document)
        return UnifiedRequest(document, False, False, path)
    if path == RESPONSES_PATH:
        chat = responses_to_chat(document)
        # The Responses stream ends with the usage, so every translation is asked for it.
        return UnifiedRequest(chat, chat.get("stream") is True, True, path, document)
    if not isinstance(document.get("messages"), list) or not document["messages"]:
        raise InvalidChatRequest("`messages` must be a non-empty list")
    options = document.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return UnifiedRequest(document, document.get("stream") is True, include_usage)


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

    async def models(self, organization_id: str) -> list[dict[str, Any]]:
        """OpenAI's model objects for every model the organization can call here: a deployment
        of the operator's, or a model of a provider it has a key for (its own or the
        operator's) or that needs none."""
        usable = set()
        for prefix, upstream in self._upstreams.items():
            if await self._usable(organization_id, upstream):
                usable.add(prefix)
        listed = []
        for name, providers in self._registry.listing().items():
            serving = [p for p in providers if p in usable]
            if self._registry.is_deployed(name) or serving:
                owner = serving[0] if serving else providers[0]
                listed.append({"id": name, "object": "model", "created": 0, "owned_by": owner})
        return listed

    async def _usable(self, organization_id: str, upstream: Upstream) -> bool:
        if upstream.auth == "key":
            if upstream.key_header is None or upstream.env_key:
                return True
            return bool(await self._secret(organization_id, upstream.provider, upstream))
        cloud = "BEDROCK" if upstream.auth == "aws" else "VERTEX"
        own = await stored_secret(self._keys, organization_id, cloud)
        variables = (
            ("AWS_ACCESS_KEY_ID",)
            if upstream.auth == "aws"
            else ("GOOGLE_APPLICATION_CREDENTIALS",)
        )
        return bool(own) or any(self._environ.get(name) for name in variables)

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
        return Plan(first.provider, request.path, request.stream, False, targets)

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
        except KeysUnavailable:  # every route would read the same store: a 503, not a 400
            raise
        except InvalidInput as refused:  # no credentials, or a request this API cannot say
            skipped.append(f"{label}: {refused}")
            return None
        except (TypeError, ValueError, OverflowError) as unreadable:
            # A translation meeting a value of a type or size it does not check (a list where
            # a string goes, 1e308 tokens): the caller's to fix, never an unlogged 500.
            skipped.append(f"{label}: a field's value cannot be translated ({unreadable})")
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
        dialect = upstream.dialect
        if request.embeddings:
            dialect = embeddings_dialect(dialect, request.chat.get("encoding_format") == "base64")
        outgoing = dialect.request(request.chat, route.model, request.stream)
        hop = _hop(provider, route, dialect, outgoing.ask_usage, request)
        url = upstream.origin + outgoing.path
        headers = upstream.key_headers(secret)
        return Target(url, upstream.origin, headers, outgoing.body, RETRYABLE, hop)

    async def _signed(
        self, organization_id: str, request: UnifiedRequest, route: Route, upstream: Upstream
    ) -> Target:
        """A Bedrock call, signed with the organization's AWS key or the operator's."""
        if request.embeddings:
            raise NoUsableRoute("embeddings are not served from Bedrock here")
        credentials = await self._aws.credentials(organization_id)
        outgoing = upstream.dialect.request(request.chat, route.model, request.stream)
        hop = _hop(upstream.provider, route, upstream.dialect, False, request)
        url = upstream.origin + outgoing.path
        headers = upstream.key_headers(None)
        target = Target(url, upstream.origin, headers, outgoing.body, RETRYABLE, hop)
        return self._aws.signed(target, credentials)

    async def _google(
        self, organization_id: str, request: UnifiedRequest, route: Route, upstream: Upstream
    ) -> Target:
        """A Vertex AI call, in the project of the service account whose token it carries."""
        if request.embeddings:
            raise NoUsableRoute("embeddings are not served from Vertex AI here")
        token, project = await self._google_auth.bearer(organization_id)
        dialect = VertexChat(project, self._google_auth.location)
        outgoing = dialect.request(request.chat, route.model, request.stream)
        hop = _hop(upstream.provider, route, dialect, False, request)
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
        if upstream.key_header is not None:
            stored = await stored_secret(self._keys, organization_id, provider.name)
            if stored:
                return stored
        return upstream.env_key


def _hop(
    provider: Provider, route: Route, dialect: Dialect, ask_usage: bool, request: UnifiedRequest
) -> Hop:
    return Hop(provider, route, dialect, ask_usage, request.include_usage, request.responses)


def embeddings_dialect(chat: Dialect, base64_output: bool = False) -> Dialect:
    """The embeddings API of the provider speaking chat dialect `chat`."""
    if isinstance(chat, OpenAIChat):
        return OpenAIEmbeddings(chat.prefix)
    if isinstance(chat, AzureChat):
        return AzureEmbeddings(chat.api_version)
    if isinstance(chat, GeminiGenerate):
        return GeminiEmbeddings(base64_output)
    raise NoUsableRoute(f"embeddings are not served from {chat.name} here")


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
