"""Regenerates the dashboard screenshots in `docs/screenshots/`: a live Heliograph on loopback
with the browser suite's seeded traffic (the fake provider, sent through the real gateway), each
page opened in Debian's Chromium at 1280x800, home, requests and a session in both themes.

    python docs/screenshots.py [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the browser suite's harness and fake provider

from playwright.sync_api import sync_playwright  # noqa: E402

from dashboard_browser import CHROMIUM_ARGS, sign_in  # noqa: E402
from dashboard_harness import SESSION_ID, SESSION_PATHS, Account, LiveDashboard, seed  # noqa: E402
from heliograph.analytics.chdb_executor import open_chdb, release_chdb  # noqa: E402
from heliograph.services.audit import SYSTEM  # noqa: E402

BOTH_THEMES = ("home", "requests", "session")


def shots(session_id: str, request_id: str, prompt_id: str) -> dict[str, str]:
    """File name -> path of the page it shows."""
    return {
        "home": "/?range=24h",
        "requests": "/requests?range=24h",
        "request": f"/requests/{request_id}",
        "sessions": "/sessions?range=24h",
        "session": f"/sessions/{session_id}",
        "users": "/users?range=24h",
        "user": "/users/alice?range=24h",
        "properties": "/properties?range=24h&key=Environment",
        "cache": "/cache?range=24h",
        "sql": "/sql?q=SELECT%20model%2C%20count()%20AS%20requests%2C%20sum(cost)%20AS%20cost"
        "%20FROM%20request_response%20GROUP%20BY%20model%20ORDER%20BY%20requests%20DESC",
        "prompts": "/prompts",
        "prompt": f"/prompts/{prompt_id}",
        "prompt-playground": f"/prompts/{prompt_id}/playground",
        "webhooks": "/webhooks",
        "alerts": "/alerts",
        "settings": "/settings",
    }


def configure(live: LiveDashboard, acme: Account) -> str:
    """A prompt with three versions in two environments, a webhook whose test delivery is
    still being retried (its destination does not resolve here) and an alert that has fired;
    the prompt's id."""
    assert live.running is not None
    services, org_id = live.running.services, acme.organization_id
    system = {
        "role": "system",
        "content": "You plan trips to {{hc:city:string}} in {{hc:days:number}} days.",
    }
    body = {"model": "gpt-4o-mini", "temperature": 0.7, "messages": [system]}
    first = services.prompts.create(org_id, "trip-planner", ["travel", "beta"], body, SYSTEM)
    shorter = {**body, "max_tokens": 400}
    second = services.prompts.new_version(
        org_id, first.prompt_id, first.id, False, "Cap the answer", shorter, SYSTEM, "staging"
    )
    friendly = {"role": "system", "content": f"{system['content']} Be friendly."}
    services.prompts.new_version(
        org_id,
        first.prompt_id,
        second.id,
        False,
        "A friendlier tone",
        {**shorter, "messages": [friendly]},
        SYSTEM,
    )
    hook = services.webhooks.create(
        org_id, "https://hooks.acme.example/heliograph", 100.0, [], True
    )
    services.webhooks.send_test(org_id, hook.id)
    email = {"type": "email", "to": ["oncall@acme.example"]}
    rule = {"name": "Errors above 5%", "metric": "error_rate", "threshold": 5, "window_minutes": 60}
    services.alerts.create(org_id, {**rule, "channels": [email]})
    spend = {"name": "Hourly spend", "metric": "cost", "threshold": 25, "window_minutes": 60}
    services.alerts.create(org_id, {**spend, "channels": [email]})
    live.run(services.alert_evaluator.evaluate_now())
    return first.prompt_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=HERE / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        analytics = Path(workdir) / "analytics"
        keeper = open_chdb(analytics)
        live = LiveDashboard(Path(workdir) / "data", analytics)
        try:
            live.start()
            acme, _ = seed(live)
            prompt_id = configure(live, acme)
            # The gpt-4o request with an image and a tool call: the richest conversation.
            request_id = acme.request_ids[len(SESSION_PATHS)]
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=args.chromium, args=CHROMIUM_ARGS
                )
                for scheme in ("light", "dark"):
                    context = browser.new_context(
                        viewport={"width": 1280, "height": 800}, color_scheme=scheme
                    )
                    sign_in(context, live, acme.email)
                    page = context.new_page()
                    for name, path in shots(SESSION_ID, request_id, prompt_id).items():
                        if scheme == "dark" and name not in BOTH_THEMES:
                            continue
                        page.goto(live.url + path, wait_until="networkidle")
                        if name == "prompt-playground":  # a run, its answer streamed in
                            page.fill('[data-input="city"]', "Lisbon")
                            page.fill('[data-input="days"]', "3")
                            page.click("[data-playground] button[type=submit]")
                            page.wait_for_selector("[data-request-link]:not([hidden])")
                        target = args.out / f"{name}{'-dark' if scheme == 'dark' else ''}.png"
                        page.screenshot(path=str(target))
                        print(f"wrote {target.relative_to(HERE.parent)}")
                    context.close()
                browser.close()
        finally:
            live.stop()
            release_chdb(keeper)


if __name__ == "__main__":
    main()
