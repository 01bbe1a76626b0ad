"""Reading the gateway configuration file named by `HELIOGRAPH_CONFIG`, once at start, for the
gateway (its providers, deployments and routing) and the log writer (its prices)."""

from __future__ import annotations

from pathlib import Path

from heliograph.domain.gateway_config import GatewayConfig, GatewayConfigError, parse_gateway_config


def read_gateway_config(path: Path | None) -> GatewayConfig:
    """The configuration file at `path` (None: an empty configuration); `GatewayConfigError`
    names the file and the key at fault."""
    if path is None:
        return GatewayConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise GatewayConfigError(f"HELIOGRAPH_CONFIG {path}: cannot read it ({error})") from None
    try:
        return parse_gateway_config(text)
    except GatewayConfigError as error:
        raise GatewayConfigError(f"HELIOGRAPH_CONFIG {path}: {error}") from None
