"""The fake provider's routes, and a running instance on a free loopback port."""

from __future__ import annotations

from aiohttp import web

from fake_provider import (
    anthropic_api,
    bedrock_api,
    gemini_api,
    google_oauth,
    openai_api,
    vertex_api,
)
from fake_provider.shared import SEEN, Seen


def build_app(seen: Seen | None = None) -> web.Application:
    app = web.Application(handler_args={})
    app[SEEN] = seen or Seen()
    app.router.add_post("/v1/chat/completions", openai_api.chat)
    app.router.add_post("/v1/moderations", openai_api.moderations)
    app.router.add_post("/v1/embeddings", openai_api.embeddings)
    # Azure OpenAI: the same API under a deployment's path (`?api-version=` in the query).
    app.router.add_post("/openai/deployments/{deployment}/chat/completions", openai_api.chat)
    app.router.add_post("/openai/deployments/{deployment}/embeddings", openai_api.embeddings)
    app.router.add_post("/v1/messages", anthropic_api.messages)
    app.router.add_post("/{version:v1beta|v1}/models/{model_method}", gemini_api.generate)
    bedrock_api.add_routes(app.router)  # /model/{id}/converse, ...: SigV4 checked
    google_oauth.add_routes(app.router)  # POST /token: Google's OAuth token endpoint
    vertex_api.add_routes(app.router)  # /v1/projects/.../publishers/{publisher}/models/...
    return app


async def start_fake(port: int = 0) -> tuple[web.AppRunner, int, Seen]:
    seen = Seen()
    runner = web.AppRunner(build_app(seen), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    sock = site._server.sockets[0]  # type: ignore[union-attr]
    return runner, sock.getsockname()[1], seen
