"""The floor for comparison: the smallest aiohttp proxy that forwards one route and streams the
answer back, with no auth, no logging and no header handling. What Heliograph adds on top of this
is the cost of being a product rather than a pipe.

Run as `python bench/floor_proxy.py PORT UPSTREAM_ORIGIN`.
"""

from __future__ import annotations

import sys

import aiohttp
import uvloop
from aiohttp import web


def main() -> None:
    port, upstream = int(sys.argv[1]), sys.argv[2]
    app = web.Application()

    async def session_context(app: web.Application) -> object:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            app[SESSION] = session
            yield

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {"Content-Type": "application/json"}
        url = upstream + request.path_qs
        async with request.app[SESSION].post(url, data=body, headers=headers) as upstream_response:
            response = web.StreamResponse(status=upstream_response.status)
            response.content_type = upstream_response.content_type
            try:
                await response.prepare(request)
                async for chunk in upstream_response.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            except ConnectionResetError:
                pass  # the load generator hung up at the end of a run
            return response

    app.cleanup_ctx.append(session_context)  # type: ignore[arg-type]
    app.router.add_post("/{tail:.*}", forward)
    web.run_app(
        app, host="127.0.0.1", port=port, access_log=None, print=None, loop=uvloop.new_event_loop()
    )


SESSION = web.AppKey("session", aiohttp.ClientSession)

if __name__ == "__main__":
    main()
