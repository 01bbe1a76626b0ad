"""The committed OpenAPI document: `python -m heliograph.api.openapi` rewrites
`schemas/openapi.json`; the test suite fails when the code and that file disagree."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from heliograph.api.app import build_api_app

COMMITTED = Path(__file__).resolve().parents[3] / "schemas" / "openapi.json"


def document() -> dict[str, Any]:
    spec: dict[str, Any] = build_api_app(None).openapi()
    return spec


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else COMMITTED
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render())
    print(f"wrote {target}")  # noqa: T201 - a command-line entry point
