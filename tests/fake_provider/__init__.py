"""A fake LLM provider with real quirks: OpenAI, Anthropic and Gemini shapes, SSE split mid-line
and mid-UTF-8, Anthropic `event:` lines and pings, Gemini CRLF framing, gzip bodies, 429/5xx with
Retry-After.

Models steer it: `error-429`, `error-500` answer with that error; `slow-<ms>` waits first;
`hang` never answers; `flaky-<n>[-429]` fails `n` times per conversation, then answers;
`slow-stream` trickles a stream for 10 s. One module per provider shape; `shared` holds what they
have in common, `app` assembles them.
"""

from fake_provider.app import build_app, start_fake
from fake_provider.shared import TEXT, Seen

__all__ = ["TEXT", "Seen", "build_app", "start_fake"]
