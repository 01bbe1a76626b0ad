"""Routing across deployments: each strategy's order, the circuit breaker on a fake clock, rpm and
tpm caps, and fallback lists mixing deployments with plain routes."""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal

import pytest

from heliograph.domain.gateway_config import (
    CustomProvider,
    Deployment,
    GatewayConfig,
    ModelPrice,
    Routing,
    Strategy,
)
from heliograph.gateway.routing import (
    AtCapacity,
    RouteOutcome,
    Router,
    State,
    catalog_price,
)
from heliograph.providers.model_registry import Route

OK = RouteOutcome(200, 0.5)
DOWN = RouteOutcome(503, 0.1)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def deployment(
    name: str,
    model: str = "gpt-4o",
    weight: int = 1,
    rpm: int | None = None,
    tpm: int | None = None,
) -> Deployment:
    return Deployment(model, "openai", name, weight=weight, rpm=rpm, tpm=tpm)


def route_of(d: Deployment) -> Route:
    return Route(d.provider, d.upstream_model, d)


def router(
    *deployments: Deployment,
    strategy: Strategy = Strategy.WEIGHTED,
    clock: FakeClock | None = None,
    prices: dict[str, Decimal] | None = None,
    seed: int = 7,
) -> Router:
    models = {d.model.lower() for d in deployments}
    routing = Routing(strategy=strategy, cooldown_s=30.0, failures_to_cool_down=3)
    config = GatewayConfig(deployments=deployments, routing=dict.fromkeys(models, routing))
    known = prices or {}
    return Router(
        config,
        price=lambda d: known.get(d.upstream_model),
        clock=clock or FakeClock(),
        rng=random.Random(seed),
    )


def names(routes: list[Route]) -> list[str]:
    return [route.model for route in routes]


def states(r: Router) -> dict[str, State]:
    return {status.deployment.upstream_model: status.state for status in r.snapshot()}


# --- strategies ---


def test_routes_without_deployments_pass_through_in_order() -> None:
    routes = [Route("openai", "gpt-4o"), Route("anthropic", "claude-3-5-haiku")]
    assert router().order(routes) == routes


def test_weighted_draws_follow_the_weights() -> None:
    ds = [deployment("a", weight=1), deployment("b", weight=2), deployment("c", weight=7)]
    r = router(*ds)
    routes = [route_of(d) for d in ds]
    firsts: Counter[str] = Counter()
    draws = 5000
    for _ in range(draws):
        ordered = r.order(routes)
        assert sorted(names(ordered)) == ["a", "b", "c"]  # drawn without replacement
        firsts[ordered[0].model] += 1
    for name, weight in (("a", 1), ("b", 2), ("c", 7)):
        assert firsts[name] / draws == pytest.approx(weight / 10, abs=0.025)


def test_weighted_second_place_is_drawn_from_those_left() -> None:
    ds = [deployment("a", weight=8), deployment("b", weight=1), deployment("c", weight=1)]
    r = router(*ds)
    routes = [route_of(d) for d in ds]
    seconds: Counter[str] = Counter()
    for _ in range(4000):
        ordered = r.order(routes)
        if ordered[0].model == "a":
            seconds[ordered[1].model] += 1
    # Once "a" is taken, "b" and "c" are equally likely.
    assert seconds["b"] / (seconds["b"] + seconds["c"]) == pytest.approx(0.5, abs=0.04)


def test_lowest_latency_tries_unmeasured_first_then_the_fastest() -> None:
    ds = [deployment("slow"), deployment("fast"), deployment("new")]
    r = router(*ds, strategy=Strategy.LOWEST_LATENCY)
    routes = [route_of(d) for d in ds]
    assert names(r.order(routes)) == ["slow", "fast", "new"]  # nothing measured: as listed
    r.record(routes[0], RouteOutcome(200, 2.0))
    r.record(routes[1], RouteOutcome(200, 0.4))
    assert names(r.order(routes)) == ["new", "fast", "slow"]
    r.record(routes[2], RouteOutcome(200, 1.0))
    assert names(r.order(routes)) == ["fast", "new", "slow"]


def test_latency_is_a_moving_average_that_follows_change() -> None:
    ds = [deployment("a"), deployment("b")]
    r = router(*ds, strategy=Strategy.LOWEST_LATENCY)
    a, b = (route_of(d) for d in ds)
    r.record(a, RouteOutcome(200, 0.2))
    r.record(b, RouteOutcome(200, 1.0))
    r.record(a, RouteOutcome(200, 3.0))  # one slow answer moves the average, not replaces it
    latency = {s.deployment.upstream_model: s.latency_s for s in r.snapshot()}
    assert latency["a"] == pytest.approx(0.2 + 0.3 * 2.8)
    assert names(r.order([a, b])) == ["b", "a"]
    for _ in range(10):
        r.record(b, RouteOutcome(200, 5.0))
    assert names(r.order([a, b])) == ["a", "b"]


def test_lowest_cost_orders_by_price_with_unknown_prices_last() -> None:
    ds = [deployment("unpriced"), deployment("dear"), deployment("cheap")]
    prices = {"dear": Decimal("12.5"), "cheap": Decimal("0.75")}
    r = router(*ds, strategy=Strategy.LOWEST_COST, prices=prices)
    assert names(r.order([route_of(d) for d in ds])) == ["cheap", "dear", "unpriced"]


def test_catalog_price_reads_the_config_and_genai_prices() -> None:
    vllm = CustomProvider(
        name="vllm",
        base_url="https://vllm.example",
        models=("llama", "qwen"),
        prices={"llama": ModelPrice(Decimal("0.1"), Decimal("0.3"))},
    )
    price = catalog_price(GatewayConfig(providers=(vllm,)))
    assert price(Deployment("m", "vllm", "llama")) == Decimal("0.4")
    assert price(Deployment("m", "vllm", "qwen")) is None  # the operator's, unpriced
    assert price(Deployment("m", "openai", "gpt-4o-mini")) == Decimal("0.75")
    # An Azure deployment's upstream name is its own: priced as the model callers name.
    assert price(Deployment("gpt-4o", "azure", "gpt-4o-eastus")) == Decimal("12.5")
    assert price(Deployment("m", "groq", "no-such-model-anywhere")) is None


def test_lowest_cost_with_catalog_prices_end_to_end() -> None:
    vllm = CustomProvider("vllm", "https://vllm.example", ("gpt-4o",))
    ds = (
        Deployment("gpt-4o", "vllm", "gpt-4o"),  # no price given: last
        Deployment("gpt-4o", "openai", "gpt-4o"),
        Deployment("gpt-4o", "openai", "gpt-4o-mini"),
    )
    config = GatewayConfig(
        providers=(vllm,),
        deployments=ds,
        routing={"gpt-4o": Routing(strategy=Strategy.LOWEST_COST)},
    )
    ordered = Router(config, clock=FakeClock()).order([route_of(d) for d in ds])
    assert [(r.provider, r.model) for r in ordered] == [
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-4o"),
        ("vllm", "gpt-4o"),
    ]


# --- circuit breaker ---


def test_breaker_opens_cools_down_probes_and_closes() -> None:
    clock = FakeClock()
    ds = [deployment("a"), deployment("b")]
    r = router(*ds, strategy=Strategy.LOWEST_LATENCY, clock=clock)
    a, b = (route_of(d) for d in ds)
    for _ in range(2):
        r.record(a, DOWN)
    assert states(r)["a"] is State.OK  # two failures are not yet three
    assert names(r.order([a, b])) == ["a", "b"]
    r.record(a, RouteOutcome(None))  # a timeout counts too
    assert states(r)["a"] is State.COOLING
    assert names(r.order([a, b])) == ["b"]

    clock.now += 29.9
    assert names(r.order([a, b])) == ["b"]
    clock.now += 0.1
    assert states(r)["a"] is State.PROBING
    assert names(r.order([a, b])) == ["a", "b"]

    r.record(a, RouteOutcome(429))  # a failed probe cools down at once
    status = next(s for s in r.snapshot() if s.deployment.upstream_model == "a")
    assert (status.state, status.failures, status.cooling_for_s) == (State.COOLING, 4, 30.0)
    assert names(r.order([a, b])) == ["b"]

    clock.now += 30
    r.record(a, OK)  # a successful probe closes the breaker
    status = next(s for s in r.snapshot() if s.deployment.upstream_model == "a")
    assert (status.state, status.failures) == (State.OK, 0)


def test_success_resets_the_failure_count() -> None:
    d = deployment("a")
    a = route_of(d)
    r = router(d)
    for outcome in (DOWN, DOWN, OK, DOWN, DOWN):
        r.record(a, outcome)
    assert states(r)["a"] is State.OK
    assert r.snapshot()[0].failures == 2


def test_client_errors_say_nothing_of_a_deployments_health() -> None:
    d = deployment("a")
    a = route_of(d)
    r = router(d)
    for _ in range(5):
        r.record(a, RouteOutcome(400, 0.01))
    status = r.snapshot()[0]
    assert (status.state, status.failures, status.latency_s) == (State.OK, 0, None)
    assert status.requests_last_minute == 5


def test_when_all_are_cooling_the_first_to_recover_is_probed() -> None:
    clock = FakeClock()
    ds = [deployment("a"), deployment("b")]
    r = router(*ds, clock=clock)
    a, b = (route_of(d) for d in ds)
    for _ in range(3):
        r.record(b, DOWN)
    clock.now += 5
    for _ in range(3):
        r.record(a, DOWN)
    assert set(states(r).values()) == {State.COOLING}
    assert names(r.order([a, b])) == ["b"]  # b's cool-down ends 5 s before a's

    r.record(b, DOWN)  # the probe failed: b cools down again, now ending after a's
    assert names(r.order([a, b])) == ["a"]
    r.record(a, OK)
    assert states(r) == {"a": State.OK, "b": State.COOLING}
    assert names(r.order([a, b])) == ["a"]


# --- rpm and tpm ---


def test_a_deployment_over_its_rpm_is_skipped_not_cooled() -> None:
    clock = FakeClock()
    ds = [deployment("capped", rpm=2), deployment("open")]
    r = router(*ds, strategy=Strategy.LOWEST_LATENCY, clock=clock)
    capped, other = (route_of(d) for d in ds)
    r.record(capped, OK)
    clock.now += 30
    r.record(capped, OK)
    assert names(r.order([capped, other])) == ["open"]
    assert states(r)["capped"] is State.OK
    clock.now += 31  # the first request has left the minute
    assert r.snapshot()[0].requests_last_minute == 1
    assert "capped" in names(r.order([capped, other]))


def test_a_deployment_over_its_tpm_is_skipped() -> None:
    clock = FakeClock()
    ds = [deployment("capped", tpm=1000), deployment("open")]
    r = router(*ds, strategy=Strategy.LOWEST_LATENCY, clock=clock)
    capped, other = (route_of(d) for d in ds)
    r.record_tokens(capped, 600)
    assert names(r.order([capped, other])) == ["capped", "open"]
    r.record_tokens(capped, 400)
    assert names(r.order([capped, other])) == ["open"]
    assert r.snapshot()[0].tokens_last_minute == 1000
    clock.now += 60
    assert names(r.order([capped, other])) == ["capped", "open"]


def test_every_deployment_full_is_refused_naming_the_model() -> None:
    d = deployment("a", rpm=1)
    a = route_of(d)
    r = router(d)
    r.record(a, OK)
    with pytest.raises(AtCapacity, match="'gpt-4o' is at its rpm or tpm limit") as caught:
        r.order([a])
    assert caught.value.status == 429


def test_full_deployments_are_skipped_for_a_fallback() -> None:
    d = deployment("a", rpm=1)
    a, fallback = route_of(d), Route("anthropic", "claude-3-5-haiku")
    r = router(d)
    r.record(a, OK)
    assert r.order([a, fallback]) == [fallback]


# --- fallback lists ---


def test_each_models_deployments_are_ordered_in_the_callers_place() -> None:
    gpt = [deployment("gpt-slow"), deployment("gpt-fast")]
    claude = [
        Deployment("claude", "anthropic", "claude-slow"),
        Deployment("claude", "anthropic", "claude-fast"),
    ]
    r = router(*gpt, *claude, strategy=Strategy.LOWEST_LATENCY)
    for d, latency in zip(gpt + claude, (2.0, 0.1, 3.0, 0.2), strict=True):
        r.record(route_of(d), RouteOutcome(200, latency))
    plain = Route("gemini", "gemini-2.0-flash")
    routes = [*map(route_of, gpt), plain, *map(route_of, claude)]
    assert names(r.order(routes)) == [
        "gpt-fast",
        "gpt-slow",
        "gemini-2.0-flash",
        "claude-fast",
        "claude-slow",
    ]


def test_the_caller_order_holds_between_models_whatever_their_state() -> None:
    clock = FakeClock()
    gpt = deployment("gpt")
    mini = deployment("mini", model="gpt-4o-mini")
    r = router(gpt, mini, clock=clock)
    for _ in range(3):
        r.record(route_of(gpt), DOWN)
    # gpt-4o's only deployment is cooling: probed, still before the fallback model.
    assert names(r.order([route_of(gpt), route_of(mini)])) == ["gpt", "mini"]
    assert names(r.order([route_of(mini), route_of(gpt)])) == ["mini", "gpt"]


def test_deployments_not_in_the_config_are_tracked_on_first_sight() -> None:
    r = router()
    stray = route_of(deployment("stray"))
    r.record(stray, OK)
    assert [s.deployment.upstream_model for s in r.snapshot()] == ["stray"]
    assert r.order([stray]) == [stray]
