"""AWS Signature Version 4 for one outgoing request (Bedrock's runtime by default), computed by
botocore's signer from credentials handed in: pure CPU, no botocore session, no credential
provider chain, no network. Also the credentials read from an environment and the region named
by a Bedrock runtime host.

Importing botocore's signer costs about 18 MB and 0.15 s: import this module only where AWS
requests are signed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth  # type: ignore[import-untyped, unused-ignore]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped, unused-ignore]
from botocore.credentials import Credentials  # type: ignore[import-untyped, unused-ignore]

# Headers the signature sets; any copy the caller passes would be stale or would contradict it.
# Host is left to the HTTP client, which derives it from the URL exactly as the signer does.
_REPLACED = frozenset(
    {"authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256", "host"}
)
_RUNTIME_HOST = re.compile(
    r"bedrock-runtime(?:-fips)?\.([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9]+)"
    r"\.amazonaws\.com(?:\.cn)?"
)


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    """Static AWS credentials; the secret and the session token never appear in a repr."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def credentials_from_env(environ: Mapping[str, str]) -> AwsCredentials | None:
    """The credentials in AWS's standard variables, or None unless both the key id and the
    secret are set (a blank session token counts as none)."""
    key_id = environ.get("AWS_ACCESS_KEY_ID", "").strip()
    secret = environ.get("AWS_SECRET_ACCESS_KEY", "").strip()
    if not key_id or not secret:
        return None
    token = environ.get("AWS_SESSION_TOKEN", "").strip() or None
    return AwsCredentials(key_id, secret, token)


def region_from_host(host: str) -> str | None:
    """The region of a Bedrock runtime host (`bedrock-runtime.<region>.amazonaws.com`, its FIPS
    and China forms, with or without a port); None for any other host."""
    name = host.strip().lower().rpartition("@")[2]
    if name.count(":") == 1:
        name = name.partition(":")[0]
    match = _RUNTIME_HOST.fullmatch(name.rstrip("."))
    return match.group(1) if match else None


def sign_request(
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    body: bytes,
    credentials: AwsCredentials,
    region: str,
    service: str = "bedrock",
    now: datetime | None = None,
) -> list[tuple[str, str]]:
    """The headers to send with this request: `headers` without any earlier signature headers
    or Host, then `X-Amz-Date`, `X-Amz-Security-Token` (with a session token) and
    `Authorization`. Every header passed is signed (except those SigV4 leaves out, such as
    User-Agent), so each must be sent unchanged. `url` must be exactly what goes on the wire:
    its path already percent-encoded (a model id's `:` as `%3A`), which SigV4 encodes again.
    `now` (default: the current time; a naive value is taken as UTC) fixes the timestamp."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"cannot sign a request to {url[:120]!r}: not an http(s) URL")
    moment = datetime.now(UTC) if now is None else now
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    timestamp = moment.strftime(SIGV4_TIMESTAMP)
    kept = [(name, value) for name, value in headers if name.lower() not in _REPLACED]
    added = [("X-Amz-Date", timestamp)]
    if credentials.session_token:
        added.append(("X-Amz-Security-Token", credentials.session_token))

    request = AWSRequest(method=method.upper(), url=url, data=body)
    for name, value in kept + added:
        request.headers[name] = value  # appends: a repeated header is signed with every value
    request.context["timestamp"] = timestamp
    aws_credentials = Credentials(
        credentials.access_key_id, credentials.secret_access_key, credentials.session_token
    )
    signer = SigV4Auth(aws_credentials, service, region)
    # botocore's add_auth reads the clock itself; its public steps take the timestamp given.
    string_to_sign = signer.string_to_sign(request, signer.canonical_request(request))
    signature = str(signer.signature(string_to_sign, request))
    signed_headers = str(signer.signed_headers(signer.headers_to_sign(request)))
    authorization = (
        f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return [*kept, *added, ("Authorization", authorization)]
