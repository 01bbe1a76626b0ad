"""The command line: `init`, `keys`, and `serve` as a real process (the README's run command),
which starts on embedded stores, proxies, and flushes its logs when told to stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import Fake
from heliograph.cli.main import cli
from heliograph.settings import Settings, load_settings


def test_init_prints_the_key_once_and_json_last(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["init", "--data-dir", str(tmp_path), "--org", "acme", "--json"]
    )
    assert result.exit_code == 0, result.output
    last = json.loads(result.output.strip().splitlines()[-1])
    assert last["api_key"].startswith("sk-helicone-")
    assert uuid.UUID(last["organization_id"])


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]
    org = json.loads(runner.invoke(cli, ["init", *data, "--json"]).output.splitlines()[-1])
    created = runner.invoke(
        cli, ["keys", "create", *data, "--org", org["organization_id"], "--name", "ci"]
    )
    assert created.exit_code == 0, created.output
    key_id, key = created.output.split()
    listing = runner.invoke(cli, ["keys", "list", *data]).output
    assert "ci" in listing
    assert key_id in listing
    assert key not in listing, "keys are never listed"
    revoked = runner.invoke(cli, ["keys", "revoke", *data, "--org", org["organization_id"], key_id])
    assert revoked.exit_code == 0
    assert "revoked" in runner.invoke(cli, ["keys", "list", *data]).output
    again = runner.invoke(cli, ["keys", "revoke", *data, "--org", org["organization_id"], key_id])
    assert again.exit_code != 0
    assert "no active key" in again.output
    missing = runner.invoke(cli, ["keys", "create", *data, "--org", str(uuid.uuid4())])
    assert missing.exit_code != 0
    assert "no organization" in missing.output


def test_a_second_init_refuses_a_duplicate_organization(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]
    first = json.loads(runner.invoke(cli, ["init", *data, "--json"]).output.splitlines()[-1])
    again = runner.invoke(cli, ["init", *data])
    assert again.exit_code == 1
    assert "organization 'default' already exists" in again.output
    assert f"heliograph keys create --org {first['organization_id']} --data-dir" in again.output
    assert "heliograph init --name <name>" in again.output
    other = runner.invoke(cli, ["init", *data, "--name", "other", "--json"])
    assert other.exit_code == 0, other.output
    listing = runner.invoke(cli, ["keys", "list", *data]).output
    assert "(default)" in listing
    assert "(other)" in listing
    assert len(listing.splitlines()) == 2


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The command line as a user runs it; a `serve` that starts anyway is stopped after 20 s."""
    command = [sys.executable, "-m", "heliograph", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=20)


def test_serve_without_an_organization_says_to_run_init(tmp_path: Path) -> None:
    port = str(free_port())
    result = run_cli(
        "serve", "--data-dir", str(tmp_path), "--gateway-workers", "0", "--gateway-port", port
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: no organization yet; run `heliograph init --data-dir {tmp_path}` first "
        "to create one\n"
    )


def test_a_bad_setting_is_named_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "HELIOGRAPH_DATA_DIR": str(tmp_path), "HELIOGRAPH_GATEWAY_PORT": "abc"}
    for command in ("serve", "gateway", "init"):
        result = run_cli(command, env=env)
        assert result.returncode == 1, command
        assert result.stderr.splitlines() == [
            "Error: HELIOGRAPH_GATEWAY_PORT must be an integer, not 'abc'"
        ], command


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"HELIOGRAPH_SIGNUP": "everyone"},
            "Error: HELIOGRAPH_SIGNUP must be first-user, invite or open, not 'everyone'",
        ),
        (
            {"HELIOGRAPH_OIDC_ISSUER": "https://id.example"},
            "Error: single sign-on needs all of HELIOGRAPH_OIDC_ISSUER, HELIOGRAPH_OIDC_CLIENT_ID"
            " and HELIOGRAPH_OIDC_CLIENT_SECRET (or none)",
        ),
        (
            {"HELIOGRAPH_OIDC_DEFAULT_ROLE": "owner"},
            "Error: HELIOGRAPH_OIDC_DEFAULT_ROLE cannot be owner",
        ),
    ],
)
def test_a_bad_accounts_setting_stops_commands_in_one_line(
    tmp_path: Path, variables: dict[str, str], message: str
) -> None:
    CliRunner().invoke(cli, ["init", "--data-dir", str(tmp_path)])
    env = {**os.environ, "HELIOGRAPH_DATA_DIR": str(tmp_path), **variables}
    port = str(free_port())
    for command in (["serve", "--gateway-port", port], ["users", "list"]):
        result = run_cli(*command, env=env)
        assert result.returncode == 1, (command, result.stderr)
        assert result.stderr.splitlines() == [message], command


def test_a_bad_secret_key_stops_serve_with_its_reason(tmp_path: Path) -> None:
    CliRunner().invoke(cli, ["init", "--data-dir", str(tmp_path)])
    env = {**os.environ, "HELIOGRAPH_DATA_DIR": str(tmp_path), "HELIOGRAPH_SECRET_KEY": "short"}
    result = run_cli("serve", "--gateway-port", str(free_port()), env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("Error: HELIOGRAPH_SECRET_KEY must be")


def test_settings_come_from_the_given_environment_typed_and_overridden(tmp_path: Path) -> None:
    environ = {
        "HELIOGRAPH_GATEWAY_PORT": "9000",
        "HELIOGRAPH_UPSTREAM_TIMEOUT_S": "1.5",
        "HELIOGRAPH_ANALYTICS_DIR": str(tmp_path),
        "HELIOGRAPH_HOST": "",  # empty is unset
        "HELIOGRAPH_ALLOWED_TARGET_ORIGINS": " http://a.test/ , ,https://b.test",
        "HELIOGRAPH_OPENAI_BASE_URL": "http://127.0.0.1:9",
        "HELIOGRAPH_EMPTY_BASE_URL": "",
    }
    settings = load_settings(environ, api_port=1, data_dir=None)
    assert (settings.gateway_port, settings.api_port, settings.host) == (9000, 1, "127.0.0.1")
    assert settings.upstream_timeout_s == 1.5
    assert settings.analytics_dir == tmp_path
    assert settings.data_dir == Path("./heliograph-data"), "a None override is no override"
    assert settings.allowed_target_origins == ("http://a.test", "https://b.test")
    assert settings.provider_base_urls == {"openai": "http://127.0.0.1:9"}
    assert load_settings({}) == Settings(), "only the given mapping is read"


def test_serve_on_a_busy_port_says_so_in_one_line(tmp_path: Path) -> None:
    CliRunner().invoke(cli, ["init", "--data-dir", str(tmp_path)])
    free = str(free_port())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = str(taken.getsockname()[1])
        serve = ["serve", "--data-dir", str(tmp_path), "--gateway-workers", "0"]
        for flag, other in (("--gateway-port", "--api-port"), ("--api-port", "--gateway-port")):
            result = run_cli(*serve, flag, busy, other, free)
            assert result.returncode == 1
            assert result.stderr.splitlines() == [
                f"Error: port {busy} on 127.0.0.1 is in use; is Heliograph already running? "
                f"Stop it, or choose another with {flag}"
            ]


def test_a_gateway_on_a_busy_port_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = str(taken.getsockname()[1])
        result = run_cli(
            "gateway",
            "--data-dir",
            str(tmp_path),
            "--gateway-port",
            busy,
            env={**os.environ, "HELIOGRAPH_INGEST_TOKEN": "t"},
        )
        assert result.returncode == 1
        assert result.stderr.splitlines() == [
            f"Error: port {busy} on 127.0.0.1 is in use; is a gateway already running? "
            "Stop it, or choose another with --gateway-port"
        ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:
        return 0, None


def wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while call(url)[0] != 200:
        assert process.poll() is None, process.communicate()[0].decode()
        assert time.monotonic() < deadline, "heliograph serve did not start within 30 s"
        time.sleep(0.1)


async def test_serve_runs_proxies_and_flushes_on_sigterm(tmp_path: Path, fake: Fake) -> None:
    gateway_port, api_port = free_port(), free_port()
    env = {
        **os.environ,
        "HELIOGRAPH_DATA_DIR": str(tmp_path / "data"),
        "HELIOGRAPH_OPENAI_BASE_URL": fake.origin,
        "HELIOGRAPH_FLUSH_INTERVAL_MS": "600000",  # only the shutdown flush can store the log
    }
    init = subprocess.run(
        [sys.executable, "-m", "heliograph", "init", "--json"],
        env=env,
        capture_output=True,
        check=True,
    )
    key = json.loads(init.stdout.decode().splitlines()[-1])["api_key"]
    serve = [
        sys.executable,
        "-m",
        "heliograph",
        "serve",
        "--gateway-port",
        str(gateway_port),
        "--api-port",
        str(api_port),
    ]
    process = subprocess.Popen(serve, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        # It starts and answers; how fast is `bench/startup.py`'s figure, not a test's.
        wait_until_up(f"http://127.0.0.1:{gateway_port}/healthz", process)
        wait_until_up(f"http://127.0.0.1:{api_port}/healthz", process)
        request_id = str(uuid.uuid4())
        status, body = await asyncio.to_thread(  # the fake provider runs on this event loop
            call,
            f"http://127.0.0.1:{gateway_port}/openai/v1/chat/completions",
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            {"Helicone-Auth": f"Bearer {key}", "Helicone-Request-Id": request_id},
        )
        assert status == 200
        assert body["usage"]["total_tokens"] == 30
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
        assert process.returncode == 0, output
        assert "flushing pending logs" in output
        assert "stopped" in output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    # Started again, the log written at shutdown is there.
    process = subprocess.Popen(serve, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until_up(f"http://127.0.0.1:{api_port}/healthz", process)
        status, body = call(
            f"http://127.0.0.1:{api_port}/v1/request/{request_id}",
            headers={"Authorization": f"Bearer {key}"},
        )
        assert status == 200
        assert body["data"]["prompt_tokens"] == 16
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
        assert process.returncode == 0


def test_settings_never_show_a_secret_in_their_repr() -> None:
    """A crash report or a debug line that prints the settings leaks no password or key."""
    secrets = {
        "HELIOGRAPH_DATABASE_URL": "postgresql://app:db-pw-1@127.0.0.1/test",
        "HELIOGRAPH_REDIS_URL": "redis://:redis-pw-2@127.0.0.1:6379/0",
        "HELIOGRAPH_SECRET_KEY": "k" * 40,
        "HELIOGRAPH_INGEST_TOKEN": "ingest-token-3",
        "HELIOGRAPH_SMTP_URL": "smtp://mail:smtp-pw-4@127.0.0.1:25",
        "HELIOGRAPH_OTLP_ENDPOINT": "http://otel:otlp-pw-5@127.0.0.1:4318",
        "HELIOGRAPH_OTLP_HEADERS": "Authorization=Bearer%20otlp-token-6",
    }
    shown = repr(load_settings(secrets))
    for leaked in ("db-pw-1", "redis-pw-2", "k" * 40, "ingest-token-3", "smtp-pw-4", "otlp-pw-5"):
        assert leaked not in shown
    assert "otlp-token-6" not in shown
