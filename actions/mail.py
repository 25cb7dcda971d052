"""Mail to a customer over SMTP (aiosmtplib), with its texts from actions/mail.yml.

The server comes from the environment: SMTP_HOST and SMTP_PORT (by default the local mail
catcher `make run` starts, 127.0.0.1:8025), SMTP_USERNAME and SMTP_PASSWORD if it needs a
login, SMTP_TLS=starttls|tls|none (default: STARTTLS when the server offers it), SMTP_FROM.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import yaml

logger = logging.getLogger(__name__)

TEXTS = Path(__file__).with_name("mail.yml")
TLS_MODES = ("auto", "starttls", "tls", "none")


class MailUnavailable(Exception):
    """The mail could not be handed to the SMTP server."""


@dataclass(frozen=True)
class MailSettings:
    host: str = "127.0.0.1"
    port: int = 8025
    username: str | None = None
    password: str | None = None
    tls: str = "auto"
    sender: str | None = None  # None: the `from` of mail.yml
    timeout_seconds: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> MailSettings:
        tls = environ.get("SMTP_TLS", "auto").lower()
        if tls not in TLS_MODES:
            raise ValueError(f"SMTP_TLS must be one of {', '.join(TLS_MODES)}, not {tls!r}")
        return cls(
            host=environ.get("SMTP_HOST", cls.host),
            port=int(environ.get("SMTP_PORT", cls.port)),
            username=environ.get("SMTP_USERNAME") or None,
            password=environ.get("SMTP_PASSWORD") or None,
            tls=tls,
            sender=environ.get("SMTP_FROM") or None,
        )


@functools.lru_cache(maxsize=1)
def mail_texts() -> dict[str, Any]:
    return yaml.safe_load(TEXTS.read_text(encoding="utf-8"))


def compose(kind: str, to: str, **values: Any) -> EmailMessage:
    """The mail `kind` of mail.yml, to `to`, its placeholders filled with `values`."""
    texts = mail_texts()
    template = texts[kind]
    values = {"shop": texts["shop"], **values}
    message = EmailMessage()
    message["From"] = get_mail_settings().sender or texts["from"]
    message["To"] = to
    message["Subject"] = template["subject"].format(**values)
    message.set_content(template["body"].format(**values))
    return message


async def send(message: EmailMessage, settings: MailSettings | None = None) -> None:
    settings = settings or get_mail_settings()
    try:
        await aiosmtplib.send(
            message,
            hostname=settings.host,
            port=settings.port,
            username=settings.username,
            password=settings.password,
            use_tls=settings.tls == "tls",
            start_tls={"auto": None, "starttls": True}.get(settings.tls, False),
            timeout=settings.timeout_seconds,
        )
    except (aiosmtplib.SMTPException, OSError) as error:
        logger.error("Mail to the customer not sent: SMTP %s:%s said %s", settings.host, settings.port, error)
        raise MailUnavailable(str(error)) from error


@functools.lru_cache(maxsize=1)
def get_mail_settings() -> MailSettings:
    return MailSettings.from_env()
