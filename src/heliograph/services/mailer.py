"""E-mail for invitations and password resets, over SMTP when `HELIOGRAPH_SMTP_URL` is set
(`smtp://user:password@host:port`, `smtps://` for TLS from the start, `?starttls=1` to upgrade).
Without it nothing is sent, and the links are handed to whoever asked (an admin, the CLI)."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger("heliograph.mail")
TIMEOUT_S = 10.0


class MailError(Exception):
    """The message could not be handed to the SMTP server."""


class Mailer:
    def __init__(self, url: str, sender: str) -> None:
        self._url = urlsplit(url) if url else None
        self._sender = sender
        if self._url is not None and self._url.scheme not in ("smtp", "smtps"):
            raise ValueError("HELIOGRAPH_SMTP_URL must start with smtp:// or smtps://")

    @property
    def enabled(self) -> bool:
        return self._url is not None

    def send(self, to: str, subject: str, text: str) -> None:
        """Send one plain-text message (blocking: call it on a worker thread)."""
        url = self._url
        if url is None:
            raise MailError("no SMTP server is configured")
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(text)
        host, port = url.hostname or "localhost", url.port
        try:
            if url.scheme == "smtps":
                context = ssl.create_default_context()
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    host, port or 465, timeout=TIMEOUT_S, context=context
                )
            else:
                client = smtplib.SMTP(host, port or 25, timeout=TIMEOUT_S)
            with client:
                if url.scheme == "smtp" and parse_qs(url.query).get("starttls") == ["1"]:
                    client.starttls(context=ssl.create_default_context())
                if url.username:
                    client.login(unquote(url.username), unquote(url.password or ""))
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as error:
            # The server's reply may quote the address; the recipient is not logged.
            log.warning("could not send %r by SMTP: %s", subject, type(error).__name__)
            raise MailError(
                f"the SMTP server did not take the message ({type(error).__name__})"
            ) from error
