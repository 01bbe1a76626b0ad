"""SigV4 signing of Bedrock requests: AWS's own test vector, botocore's signer and boto3 agree
with `sign_request` byte for byte; old signature headers are replaced; nothing but CPU is used."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import boto3  # type: ignore[import-untyped, unused-ignore]
import botocore.auth  # type: ignore[import-untyped, unused-ignore]
import botocore.credentials  # type: ignore[import-untyped, unused-ignore]
import pytest
from botocore.auth import SigV4Auth  # type: ignore[import-untyped, unused-ignore]
from botocore.awsrequest import AWSRequest, AWSResponse  # type: ignore[import-untyped, unused-ignore]
from botocore.credentials import Credentials  # type: ignore[import-untyped, unused-ignore]

from heliograph.providers.aws_signing import (
    AwsCredentials,
    credentials_from_env,
    region_from_host,
    sign_request,
)

KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
CREDENTIALS = AwsCredentials(KEY_ID, SECRET, None)
NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
URL = (
    "https://bedrock-runtime.us-east-1.amazonaws.com"
    "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
)
BODY = b'{"messages":[{"role":"user","content":[{"text":"Hi"}]}]}'
HEADERS = [("Content-Type", "application/json"), ("Accept", "application/json")]


def authorization(headers: list[tuple[str, str]]) -> str:
    (value,) = [v for k, v in headers if k == "Authorization"]
    return value


@pytest.fixture
def frozen_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's signer reads the clock through this function; NOW for the test."""
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: NOW)


def test_aws_signature_v4_test_suite_get_vanilla() -> None:
    """The `get-vanilla` case of AWS's published SigV4 test suite."""
    at = datetime(2015, 8, 30, 12, 36, 0, tzinfo=UTC)
    headers = sign_request(
        "GET",
        "https://example.amazonaws.com/",
        [],
        b"",
        CREDENTIALS,
        "us-east-1",
        "service",
        now=at,
    )
    assert headers == [
        ("X-Amz-Date", "20150830T123600Z"),
        (
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
    ]


@pytest.mark.parametrize("token", [None, "session-token-1"])
def test_matches_botocores_own_add_auth(frozen_botocore: None, token: str | None) -> None:
    mine = sign_request(
        "POST", URL, HEADERS, BODY, AwsCredentials(KEY_ID, SECRET, token), "us-east-1", now=NOW
    )
    request = AWSRequest(method="POST", url=URL, data=BODY, headers=dict(HEADERS))
    SigV4Auth(Credentials(KEY_ID, SECRET, token), "bedrock", "us-east-1").add_auth(request)
    assert authorization(mine) == request.headers["Authorization"]
    assert dict(mine)["X-Amz-Date"] == request.headers["X-Amz-Date"] == "20240506T070809Z"
    assert dict(mine).get("X-Amz-Security-Token") == request.headers.get("X-Amz-Security-Token")
    assert "SignedHeaders=accept;content-type;host;x-amz-date" in authorization(mine)


@pytest.mark.parametrize("token", [None, "session-token-1"])
def test_boto3_sends_the_same_authorization(frozen_botocore: None, token: str | None) -> None:
    """boto3 signs a Converse call; `sign_request` given the headers boto3 had before signing
    (and the same body, URL and instant) produces the very same Authorization."""
    seen: dict[str, Any] = {}

    def before_sign(request: AWSRequest, **_: Any) -> None:
        seen["unsigned"] = [(k, _text(v)) for k, v in request.headers.items()]

    def before_send(request: AWSRequest, **_: Any) -> AWSResponse:
        seen["sent"] = request
        answer: dict[str, Any] = {
            "output": {"message": {"role": "assistant", "content": []}},
            "stopReason": "end_turn",
            "usage": {},
            "metrics": {"latencyMs": 1},
        }
        return AWSResponse(
            request.url,
            200,
            {"Content-Type": "application/json"},
            _Raw(json.dumps(answer).encode()),
        )

    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        aws_session_token=token,
    )
    client.meta.events.register("before-sign", before_sign)
    client.meta.events.register("before-send", before_send)
    client.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "Hi"}]}])
    sent = seen["sent"]
    assert sent.url == URL  # boto3 sends the model id's ":" as "%3A", as we must
    mine = sign_request(
        sent.method,
        sent.url,
        seen["unsigned"],
        sent.body,
        AwsCredentials(KEY_ID, SECRET, token),
        "us-east-1",
        now=NOW,
    )
    assert authorization(mine) == _text(sent.headers["Authorization"])
    if token:
        assert dict(mine)["X-Amz-Security-Token"] == token


class _Raw:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def test_replaces_old_signature_headers_and_host_and_keeps_the_rest_in_order() -> None:
    stale = [
        ("Host", "gateway.example"),
        ("Content-Type", "application/json"),
        ("authorization", "Bearer caller-key"),
        ("X-Amz-Date", "20000101T000000Z"),
        ("x-amz-security-token", "old"),
        ("X-Amz-Content-Sha256", "0" * 64),
        ("Accept", "application/json"),
    ]
    out = sign_request(
        "POST", URL, stale, BODY, AwsCredentials(KEY_ID, SECRET, "t"), "us-east-1", now=NOW
    )
    assert [k for k, _ in out] == [
        "Content-Type",
        "Accept",
        "X-Amz-Date",
        "X-Amz-Security-Token",
        "Authorization",
    ]
    assert dict(out)["X-Amz-Date"] == "20240506T070809Z"
    assert dict(out)["X-Amz-Security-Token"] == "t"
    # Stale headers change nothing: the result equals signing the clean list.
    clean = sign_request(
        "POST", URL, HEADERS, BODY, AwsCredentials(KEY_ID, SECRET, "t"), "us-east-1", now=NOW
    )
    assert authorization(out) == authorization(clean)


def test_everything_signed_changes_the_signature() -> None:
    def sig(**change: Any) -> str:
        args: dict[str, Any] = {
            "method": "POST",
            "url": URL,
            "headers": HEADERS,
            "body": BODY,
            "credentials": CREDENTIALS,
            "region": "us-east-1",
            "now": NOW,
        }
        return authorization(sign_request(**(args | change))).rpartition("Signature=")[2]

    base = sig()
    variants = [
        sig(url=URL.replace("%3A", ":")),  # the path is signed as sent, not decoded
        sig(url=URL.replace("us-east-1", "us-west-2")),
        sig(body=BODY + b" "),
        sig(headers=[("Content-Type", "text/plain"), HEADERS[1]]),
        sig(region="eu-west-1"),
        sig(now=NOW + timedelta(seconds=1)),
        sig(credentials=AwsCredentials(KEY_ID, SECRET + "x", None)),
        sig(method="PUT"),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_times_are_taken_in_utc() -> None:
    paris = NOW.astimezone(timezone(timedelta(hours=2)))
    naive = NOW.replace(tzinfo=None)
    signed = [
        sign_request("POST", URL, HEADERS, BODY, CREDENTIALS, "us-east-1", now=t)
        for t in (NOW, paris, naive)
    ]
    assert signed[0] == signed[1] == signed[2]
    today = sign_request("POST", URL, HEADERS, BODY, CREDENTIALS, "us-east-1")
    assert dict(today)["X-Amz-Date"][:8] == datetime.now(UTC).strftime("%Y%m%d")


def test_a_port_is_signed_as_part_of_the_host() -> None:
    url = "http://127.0.0.1:8123/model/m/converse"
    request = AWSRequest(method="POST", url=url, data=BODY, headers={"Host": "127.0.0.1:8123"})
    request.headers["X-Amz-Date"] = request.context["timestamp"] = "20240506T070809Z"
    signer = SigV4Auth(Credentials(KEY_ID, SECRET), "bedrock", "us-east-1")
    expected = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )
    mine = sign_request("POST", url, [], BODY, CREDENTIALS, "us-east-1", now=NOW)
    assert authorization(mine).endswith(f"Signature={expected}")


@pytest.mark.parametrize("url", ["ftp://host/x", "/model/m/converse", "https:///x", ""])
def test_refuses_what_is_not_an_http_url(url: str) -> None:
    with pytest.raises(ValueError, match="not an http"):
        sign_request("POST", url, [], b"", CREDENTIALS, "us-east-1", now=NOW)


def test_signing_uses_no_network_and_no_credential_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def forbidden(*_: Any, **__: Any) -> Any:
        raise AssertionError("signing must not look anything up")

    monkeypatch.setattr(socket.socket, "connect", forbidden)
    monkeypatch.setattr(socket, "getaddrinfo", forbidden)
    monkeypatch.setattr(botocore.credentials, "create_credential_resolver", forbidden)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    out = sign_request("POST", URL, HEADERS, BODY, CREDENTIALS, "us-east-1", now=NOW)
    assert authorization(out).startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240506/")


def test_credentials_repr_hides_the_secret_and_token() -> None:
    credentials = AwsCredentials(KEY_ID, SECRET, "token-secret")
    text = repr(credentials) + str(credentials)
    assert KEY_ID in text
    assert SECRET not in text
    assert "token-secret" not in text
    with pytest.raises(AttributeError):
        credentials.secret_access_key = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET},
            AwsCredentials(KEY_ID, SECRET, None),
        ),
        (
            {
                "AWS_ACCESS_KEY_ID": KEY_ID,
                "AWS_SECRET_ACCESS_KEY": SECRET,
                "AWS_SESSION_TOKEN": "t",
            },
            AwsCredentials(KEY_ID, SECRET, "t"),
        ),
        (
            {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": ""},
            AwsCredentials(KEY_ID, SECRET, None),
        ),
        ({"AWS_ACCESS_KEY_ID": KEY_ID}, None),
        ({"AWS_SECRET_ACCESS_KEY": SECRET}, None),
        ({"AWS_ACCESS_KEY_ID": " ", "AWS_SECRET_ACCESS_KEY": SECRET}, None),
        ({}, None),
    ],
)
def test_credentials_from_env(environ: dict[str, str], expected: AwsCredentials | None) -> None:
    assert credentials_from_env(environ) == expected


@pytest.mark.parametrize(
    ("host", "region"),
    [
        ("bedrock-runtime.us-east-1.amazonaws.com", "us-east-1"),
        ("bedrock-runtime.eu-central-1.amazonaws.com:443", "eu-central-1"),
        ("BEDROCK-RUNTIME.AP-NORTHEAST-1.AMAZONAWS.COM", "ap-northeast-1"),
        ("bedrock-runtime-fips.us-gov-west-1.amazonaws.com", "us-gov-west-1"),
        ("bedrock-runtime.cn-north-1.amazonaws.com.cn", "cn-north-1"),
        ("bedrock.us-east-1.amazonaws.com", None),  # the control plane, not the runtime
        ("bedrock-runtime.us-east-1.amazonaws.com.evil.example", None),
        ("evil.example/bedrock-runtime.us-east-1.amazonaws.com", None),
        ("bedrock-runtime.amazonaws.com", None),
        ("127.0.0.1:8080", None),
        ("", None),
    ],
)
def test_region_from_host(host: str, region: str | None) -> None:
    assert region_from_host(host) == region
