"""Credentials for the two clouds whose APIs take no plain key: AWS Bedrock (every call signed
with SigV4 by the gateway, since a client's signature covers the gateway's host, not AWS's) and
Google Vertex AI (a bearer token from a service account). Each organization's own credentials,
stored in the vault as the provider key, come first; else the operator's environment."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from heliograph.domain.errors import InvalidInput
from heliograph.gateway.attempts import Target
from heliograph.gateway.ports import ProviderKeySource

if TYPE_CHECKING:  # botocore and google-auth load on first use: most gateways never call AWS
    from heliograph.gateway.google_tokens import VertexTokens
    from heliograph.providers.aws_signing import AwsCredentials

DEFAULT_REGION = "us-east-1"
DEFAULT_LOCATION = "us-central1"
# Headers a client's own signature put on the request, replaced by the gateway's.
AWS_SIGNATURE_HEADERS = frozenset(
    {"authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"}
)


class MissingCloudCredentials(InvalidInput):
    status = 401
    code = "missing_provider_credentials"


class BadCloudCredentials(InvalidInput):
    code = "invalid_provider_credentials"


class KeysUnavailable(InvalidInput):
    """The organization's stored provider keys cannot be read (the app DB is away): answering
    with the operator's key instead would bill the wrong account."""

    status = 503
    code = "provider_keys_unavailable"


async def stored_secret(
    keys: ProviderKeySource | None, organization_id: str, provider_name: str
) -> str | None:
    """The organization's stored key for `provider_name`, None when it has none, or the 503
    when the store cannot say (its own error types are not the gateway's)."""
    if keys is None:
        return None
    try:
        return await keys.secret(organization_id, provider_name)
    except Exception as error:
        message = f"cannot read the organization's {provider_name} key; try again"
        raise KeysUnavailable(message) from error


def aws_region(environ: Mapping[str, str]) -> str:
    return environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


class AwsAuth:
    """Signs Bedrock calls with the organization's AWS key (stored as the BEDROCK provider key:
    `ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]` or a JSON object with those fields in
    AWS's spelling) or the operator's `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`."""

    def __init__(self, environ: Mapping[str, str], keys: ProviderKeySource | None) -> None:
        self._environ = environ
        self._keys = keys

    async def credentials(self, organization_id: str) -> AwsCredentials:
        from heliograph.providers.aws_signing import credentials_from_env

        stored = await stored_secret(self._keys, organization_id, "BEDROCK")
        if stored:
            return aws_credentials(stored)
        found = credentials_from_env(self._environ)
        if found is None:
            raise MissingCloudCredentials(
                "no AWS credentials for Bedrock: store a BEDROCK provider key or set"
                " AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY on the gateway"
            )
        return found

    def signed(self, target: Target, credentials: AwsCredentials) -> Target:
        """`target` with the client's signature (if any) replaced by the gateway's."""
        from heliograph.providers.aws_signing import region_from_host, sign_request

        host = target.origin.split("://", 1)[-1]
        region = region_from_host(host) or aws_region(self._environ)
        unsigned = [
            (name, value)
            for name, value in target.headers
            if name.lower() not in AWS_SIGNATURE_HEADERS and name.lower() != "host"
        ]
        headers = sign_request("POST", target.url, unsigned, target.body, credentials, region)
        return Target(target.url, target.origin, headers, target.body, target.on_codes, target.hop)


def aws_credentials(stored: str) -> AwsCredentials:
    """The AWS key a stored BEDROCK provider key holds."""
    from heliograph.providers.aws_signing import AwsCredentials

    text = stored.strip()
    if text.startswith("{"):
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError:
            document = None
        if not isinstance(document, dict):
            raise BadCloudCredentials("the stored BEDROCK key is not valid JSON")
        key_id = document.get("accessKeyId") or document.get("aws_access_key_id")
        secret = document.get("secretAccessKey") or document.get("aws_secret_access_key")
        token = document.get("sessionToken") or document.get("aws_session_token")
    else:
        key_id, _, rest = text.partition(":")
        secret, _, token = rest.partition(":")
    if not isinstance(key_id, str) or not isinstance(secret, str) or not key_id or not secret:
        raise BadCloudCredentials(
            "the stored BEDROCK key must be ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]"
        )
    return AwsCredentials(key_id, secret, token if isinstance(token, str) and token else None)


class GoogleAuth:
    """Bearer tokens for Vertex AI from the organization's service-account JSON (stored as the
    VERTEX provider key) or the operator's `GOOGLE_APPLICATION_CREDENTIALS` file. The project is
    `VERTEX_PROJECT` when set, else the service account's."""

    def __init__(
        self,
        environ: Mapping[str, str],
        keys: ProviderKeySource | None,
        token_uris: Collection[str] = (),
    ) -> None:
        self._environ = environ
        self._keys = keys
        self._extra_token_uris = frozenset(token_uris)
        self._tokens: VertexTokens | None = None
        self._file_account: str | None = None  # the operator's, read once
        self.location = environ.get("VERTEX_LOCATION") or DEFAULT_LOCATION

    async def bearer(self, organization_id: str) -> tuple[str, str]:
        """The token and the project to call, or the 401 that says what is missing."""
        from heliograph.gateway.google_tokens import project_of

        account = await self._account(organization_id)
        project = self._environ.get("VERTEX_PROJECT") or project_of(account)
        return await self._vertex_tokens().token(account), project

    async def _account(self, organization_id: str) -> str:
        stored = await stored_secret(self._keys, organization_id, "VERTEX")
        if stored:
            return stored
        if self._file_account is not None:
            return self._file_account
        path = self._environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if not path:
            raise MissingCloudCredentials(
                "no Google credentials for Vertex AI: store a VERTEX provider key (a service"
                " account's JSON) or set GOOGLE_APPLICATION_CREDENTIALS on the gateway"
            )
        try:
            self._file_account = await asyncio.to_thread(Path(path).read_text, encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise BadCloudCredentials("GOOGLE_APPLICATION_CREDENTIALS cannot be read") from None
        return self._file_account

    def _vertex_tokens(self) -> VertexTokens:
        if self._tokens is None:
            from heliograph.gateway.google_tokens import GOOGLE_TOKEN_URIS, VertexTokens

            self._tokens = VertexTokens(token_uris=GOOGLE_TOKEN_URIS | self._extra_token_uris)
        return self._tokens
