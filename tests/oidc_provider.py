"""The OpenID Connect provider the single sign-on tests sign in through: `oidc-provider-mock`
from PyPI (a Flask app built on Authlib), run as its own process on a free loopback port, ready
once its discovery document answers, and stopped by its pid.

What it does, read from its source (0.3.x): its authorize page is a form that POSTs `sub` back to
the same URL and redirects to the client with a code; a subject it does not know gets the claims
`{"email": sub}` only (no `email_verified`); `PUT /users/<sub>` sets a subject's claims, which the
ID token and userinfo carry by scope; `action=deny` answers `error=access_denied`. Any client id
and secret are accepted, and PKCE is not enforced (it registers no code-challenge extension), so
the tests check our PKCE parameters on the authorize URL rather than count on a refusal."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 30.0


@dataclass
class OidcProvider:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_user(self, sub: str, **claims: Any) -> None:
        """Give `sub` these claims (e-mail, `email_verified`, name...) for its next sign-in."""
        request = urllib.request.Request(
            f"{self.issuer}/users/{sub}",
            data=json.dumps(claims).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 204


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@contextlib.contextmanager
def run_provider(log_dir: Path, *users: dict[str, Any]) -> Iterator[OidcProvider]:
    """The provider on a free port, with `users` (claims including `sub`) predefined."""
    port = free_port()
    command = [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1"]
    command += ["--port", str(port)]
    for user in users:
        command += ["--user-claims", json.dumps(user)]
    log_path = log_dir / f"oidc-provider-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    provider = OidcProvider(port, process)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(f"{provider.issuer}/.well-known/openid-configuration"):
            if process.poll() is not None or time.monotonic() > deadline:
                output = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the OIDC provider did not start:\n{output}")
            time.sleep(0.05)
        yield provider
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the provider by its pid: SIGTERM, then SIGKILL if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
