"""Which deployments of a model a request tries, in which order. The model's strategy (weighted,
lowest latency, lowest cost) orders its deployments; a circuit breaker rests one that keeps
failing; `rpm` and `tpm` caps skip one that is full. One `Router` per gateway process, in memory.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from heliograph.domain.errors import InvalidInput
from heliograph.domain.gateway_config import (
    Deployment,
    GatewayConfig,
    ModelPrice,
    Routing,
    Strategy,
)
from heliograph.domain.pricing import NANO_USD, PriceStatus, price_usage
from heliograph.domain.usage import Usage
from heliograph.providers.model_registry import PRICE_PROVIDERS, Route

LATENCY_WEIGHT = 0.3  # the share of a new latency in the moving average
WINDOW_S = 60  # rpm and tpm count what happened in the last minute
MTOK = 1_000_000
# Route prefix → genai-prices provider id. Azure is only reached through deployments.
PRICE_IDS = {prefix: pid for pid, prefixes in PRICE_PROVIDERS.items() for prefix in prefixes}
PRICE_IDS["azure"] = "azure"

Clock = Callable[[], float]
PriceLookup = Callable[[Deployment], Decimal | None]


class State(StrEnum):
    OK = "ok"  # breaker closed: routed to
    COOLING = "cooling"  # breaker open: left out until its cool-down ends
    PROBING = "probing"  # half-open: routed to again; one failure cools it down again


class AtCapacity(InvalidInput):
    """Every deployment a request could use is at its `rpm` or `tpm` for this minute."""

    status = 429
    code = "deployments_at_capacity"


@dataclass(frozen=True, slots=True)
class RouteOutcome:
    """How one attempt on a route ended."""

    status: int | None  # the upstream's HTTP status; None: no answer (timeout, connection error)
    latency_s: float = 0.0  # until the answer's status arrived

    @property
    def failed(self) -> bool:
        """The deployment's fault: it is overloaded, broken or unreachable."""
        return self.status is None or self.status == 429 or self.status >= 500

    @property
    def succeeded(self) -> bool:
        # Other 4xx answers are the request's fault: they say nothing of the deployment's health.
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class DeploymentStatus:
    """One deployment as the router sees it, for logs and a status page."""

    deployment: Deployment
    state: State
    failures: int  # consecutive, since the last success
    latency_s: float | None  # moving average; None until one success is measured
    requests_last_minute: int
    tokens_last_minute: int
    cooling_for_s: float  # 0 unless cooling


class _Window:
    """A count over the last `WINDOW_S` seconds, kept in one-second buckets so adding and reading
    cost the same however busy the deployment is."""

    __slots__ = ("_buckets", "_second", "_total")

    def __init__(self) -> None:
        self._buckets = [0] * WINDOW_S
        self._second = 0
        self._total = 0

    def add(self, now: float, amount: int) -> None:
        self._advance(now)
        self._buckets[self._second % WINDOW_S] += amount
        self._total += amount

    def count(self, now: float) -> int:
        self._advance(now)
        return self._total

    def _advance(self, now: float) -> None:
        second = int(now)
        if second <= self._second:
            return
        if second - self._second >= WINDOW_S:
            self._buckets = [0] * WINDOW_S
            self._total = 0
        else:
            for passed in range(self._second + 1, second + 1):
                index = passed % WINDOW_S
                self._total -= self._buckets[index]
                self._buckets[index] = 0
        self._second = second


class _Tracked:
    """The health and load of one deployment."""

    __slots__ = (
        "cool_until",
        "cost",
        "deployment",
        "failures",
        "key",
        "latency_s",
        "requests",
        "routing",
        "tokens",
    )

    def __init__(self, deployment: Deployment, routing: Routing, cost: Decimal | None) -> None:
        self.deployment = deployment
        self.key = deployment.model.lower()
        self.routing = routing
        self.cost = cost
        self.failures = 0
        self.cool_until: float | None = None  # set while the breaker is open or half-open
        self.latency_s: float | None = None
        self.requests = _Window()
        self.tokens = _Window()

    def state(self, now: float) -> State:
        if self.cool_until is None:
            return State.OK
        return State.COOLING if now < self.cool_until else State.PROBING

    def cooling(self, now: float) -> bool:
        return self.cool_until is not None and now < self.cool_until

    def full(self, now: float) -> bool:
        rpm, tpm = self.deployment.rpm, self.deployment.tpm
        if rpm is not None and self.requests.count(now) >= rpm:
            return True
        return tpm is not None and self.tokens.count(now) >= tpm

    def succeed(self, latency_s: float) -> None:
        self.failures = 0
        self.cool_until = None
        previous = self.latency_s
        if previous is None:
            self.latency_s = latency_s
        else:
            self.latency_s = previous + LATENCY_WEIGHT * (latency_s - previous)

    def fail(self, now: float) -> None:
        self.failures += 1
        # A failed probe (half-open, or tried while all were cooling) cools down at once.
        if self.cool_until is not None or self.failures >= self.routing.failures_to_cool_down:
            self.cool_until = now + self.routing.cooldown_s


_Candidate = tuple[Route, _Tracked]


class Router:
    """Orders each request's routes and learns from how their attempts end."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        price: PriceLookup | None = None,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._config = config
        self._price = price or catalog_price(config)
        self._clock = clock
        # Our own generator: the global one belongs to the application (and to tests).
        self._rng = rng or random.Random()  # noqa: S311 - spreads load, guards nothing
        self._tracked: dict[Deployment, _Tracked] = {}
        for deployment in config.deployments:
            self._track(deployment)

    def order(self, routes: list[Route]) -> list[Route]:
        """The routes to attempt, in order: each model's deployments ordered by its strategy,
        cooling and full ones left out, everything else in the caller's order. Raises
        `AtCapacity` when every route was left out for its `rpm` or `tpm`."""
        if all(route.deployment is None for route in routes):
            return list(routes)
        now = self._clock()
        groups = self._groups(routes)
        ordered: list[Route] = []
        for route in routes:
            if route.deployment is None:
                ordered.append(route)
                continue
            group = groups.pop(route.deployment.model.lower(), None)
            if group is not None:
                ordered.extend(self._arrange(group, now))
        if not ordered:
            raise AtCapacity(_at_capacity(routes))
        return ordered

    def record(self, route: Route, outcome: RouteOutcome) -> None:
        """Learn from one attempt on `route`; routes without a deployment are not tracked."""
        if route.deployment is None:
            return
        tracked = self._track(route.deployment)
        now = self._clock()
        tracked.requests.add(now, 1)
        if outcome.failed:
            tracked.fail(now)
        elif outcome.succeeded:
            tracked.succeed(outcome.latency_s)

    def record_tokens(self, route: Route, tokens: int) -> None:
        """Count `tokens` an answer on `route` reported toward its deployment's `tpm`."""
        if route.deployment is not None and tokens > 0:
            self._track(route.deployment).tokens.add(self._clock(), tokens)

    def snapshot(self) -> list[DeploymentStatus]:
        """Every deployment's state now, in the order they were first seen."""
        now = self._clock()
        return [_status(tracked, now) for tracked in self._tracked.values()]

    def _track(self, deployment: Deployment) -> _Tracked:
        tracked = self._tracked.get(deployment)
        if tracked is None:
            routing = self._config.routing_for(deployment.model)
            # Prices only matter to lowest-cost models; the others never load genai-prices.
            cost = self._price(deployment) if routing.strategy is Strategy.LOWEST_COST else None
            tracked = self._tracked[deployment] = _Tracked(deployment, routing, cost)
        return tracked

    def _groups(self, routes: Iterable[Route]) -> dict[str, list[_Candidate]]:
        groups: dict[str, list[_Candidate]] = {}
        for route in routes:
            if route.deployment is not None:
                tracked = self._track(route.deployment)
                groups.setdefault(tracked.key, []).append((route, tracked))
        return groups

    def _arrange(self, group: list[_Candidate], now: float) -> list[Route]:
        ready = [c for c in group if not c[1].cooling(now) and not c[1].full(now)]
        if not ready:
            return _probe(group, now)
        if len(ready) > 1:
            ready.sort(key=self._sort_key(ready[0][1].routing.strategy))
        return [route for route, _ in ready]

    def _sort_key(self, strategy: Strategy) -> Callable[[_Candidate], tuple[bool, float]]:
        if strategy is Strategy.LOWEST_LATENCY:
            return _by_latency
        if strategy is Strategy.LOWEST_COST:
            return _by_cost
        return self._weighted_draw

    def _weighted_draw(self, candidate: _Candidate) -> tuple[bool, float]:
        # Sorting by exponential arrival times of rate `weight` is a weighted draw without
        # replacement: each comes first with probability weight / total of those left.
        return False, self._rng.expovariate(candidate[1].deployment.weight)


def catalog_price(config: GatewayConfig) -> PriceLookup:
    """A deployment's USD per million input plus output tokens: the configuration file's price
    for the operator's providers, genai-prices' for built-in ones (as costing prices them; for
    Azure, whose upstream model is a deployment name, the model callers name); None if unknown."""
    custom = frozenset(provider.name for provider in config.providers)
    own: Mapping[tuple[str, str], ModelPrice] = {
        (provider.name, model): price
        for provider in config.providers
        for model, price in provider.prices.items()
    }

    def price(deployment: Deployment) -> Decimal | None:
        if deployment.provider in custom:
            found = own.get((deployment.provider, deployment.upstream_model))
            return None if found is None else found.input_per_mtok + found.output_per_mtok
        price_id = PRICE_IDS.get(deployment.provider)
        for model in dict.fromkeys((deployment.upstream_model, deployment.model)):
            cost = price_usage(Usage(input_tokens=MTOK, output_tokens=MTOK), model, price_id)
            if cost.status is PriceStatus.PRICED:
                return Decimal(cost.cost_nano_usd) / NANO_USD
        return None

    return price


def _by_latency(candidate: _Candidate) -> tuple[bool, float]:
    latency = candidate[1].latency_s
    return (False, 0.0) if latency is None else (True, latency)  # unmeasured first


def _by_cost(candidate: _Candidate) -> tuple[bool, float]:
    cost = candidate[1].cost
    return (True, 0.0) if cost is None else (False, float(cost))  # unpriced last


def _probe(group: list[_Candidate], now: float) -> list[Route]:
    """With no deployment ready, the one whose cool-down ends first, tried as a half-open probe;
    none when the rest are only full (they are skipped, not probed)."""
    cooling = [c for c in group if c[1].cooling(now)]
    if not cooling:
        return []
    route, _ = min(cooling, key=lambda c: c[1].cool_until or 0.0)
    return [route]


def _status(tracked: _Tracked, now: float) -> DeploymentStatus:
    cool_until = tracked.cool_until
    return DeploymentStatus(
        deployment=tracked.deployment,
        state=tracked.state(now),
        failures=tracked.failures,
        latency_s=tracked.latency_s,
        requests_last_minute=tracked.requests.count(now),
        tokens_last_minute=tracked.tokens.count(now),
        cooling_for_s=max(cool_until - now, 0.0) if cool_until is not None else 0.0,
    )


def _at_capacity(routes: Iterable[Route]) -> str:
    models = sorted({route.deployment.model for route in routes if route.deployment})
    named = ", ".join(repr(model) for model in models)
    return f"model: every deployment of {named} is at its rpm or tpm limit; try again shortly"
