"""Token usage normalised across providers.

Semantics follow Helicone's stored columns: `input_tokens` excludes cache reads and writes,
`output_tokens` excludes reasoning. `None` means "the provider did not say", which is not 0.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0

    @property
    def is_known(self) -> bool:
        return self.input_tokens is not None or self.output_tokens is not None

    @property
    def total_tokens(self) -> int:
        return (
            (self.input_tokens or 0)
            + (self.output_tokens or 0)
            + self.cache_read_tokens
            + self.cache_write_tokens
            + self.reasoning_tokens
        )


UNKNOWN_USAGE = Usage()
