"""The README documents every setting and every command."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from heliograph.cli.main import cli
from heliograph.settings import Settings

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [
        f"HELIOGRAPH_{spec.name.upper()}"
        for spec in fields(Settings)
        if spec.name != "provider_base_urls" and f"`HELIOGRAPH_{spec.name.upper()}`" not in README
    ]
    assert missing == []
    assert "HELIOGRAPH_<PREFIX>_BASE_URL" in README


def test_every_command_is_documented() -> None:
    for name in cli.commands:
        assert f"heliograph {name}" in README, name
