"""App DB URLs as users write them, made into what the drivers take (no SQLAlchemy here: the
gateway process reads the app DB without it)."""

from __future__ import annotations


def normalise_url(url: str) -> str:
    """Accept `postgresql://` URLs and use the psycopg 3 driver for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url
