"""The gateway's settings: read from the environment once, then passed around."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.limits import LimitSettings
from handoff.addresses import Network, parse_networks
from handoff.db import DEFAULT_URL

ROOT = Path(__file__).resolve().parent.parent
COOKIE_MODES = ("auto", "always", "never")


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_URL
    # One Rasa server, or several separated by commas: each conversation is pinned to one.
    rasa_url: str = "http://localhost:5005"
    action_server_url: str = "http://localhost:5055"
    host: str = "0.0.0.0"
    port: int = 8080
    rasa_timeout_seconds: float = 30.0
    rasa_token: str | None = None  # when Rasa runs with --auth-token
    health_timeout_seconds: float = 2.0
    max_message_chars: int = 2000
    # Rasa reads at most this much of a message (the transcript keeps all of it): its work
    # grows with the length, and the start of a message says what it is about.
    rasa_text_chars: int = 500
    limits: LimitSettings = LimitSettings()  # per sender and per address (bot/limits.py)
    # Proxies whose X-Forwarded-For names the client (nginx on this machine by default).
    trusted_proxies: tuple[Network, ...] = parse_networks("127.0.0.1,::1")
    texts_file: Path = ROOT / "bot" / "texts.yml"
    # Signs the consoles' session cookies. Unset, one is generated once into var/secret_key
    # (fine on one machine; give every process the same HELPDESK_SECRET_KEY when there are more).
    secret_key: str | None = None
    secret_key_file: Path = ROOT / "var" / "secret_key"
    # The REST channel's shared secret (bot/channels/rest.py); unset, it serves this machine only.
    rest_secret: str | None = None
    # Signs the shop's signed-in customers (bot/shop_identity.py); unset, nobody is signed in.
    shop_identity_secret: str | None = None
    redis_url: str | None = None  # publish/subscribe between gateway processes; in-process if unset
    allowed_origins: tuple[str, ...] = ()  # origins besides the gateway's own that may use the consoles
    # The consoles' session cookie over TLS only: auto (unless served over plain http on
    # localhost), always, or never (handoff/api.py's secure_cookie).
    secure_cookies: str = "auto"
    widget_origins: tuple[str, ...] = ()  # sites that may embed the chat widget; any when empty
    telegram_token: str | None = None  # Telegram is off without one
    telegram_mode: str = "polling"  # polling (development) | webhook (production)
    telegram_webhook_url: str | None = None  # https://your.host/webhooks/telegram
    telegram_secret_token: str | None = None  # Telegram sends it back with every update
    telegram_base_url: str = "https://api.telegram.org/bot"
    telegram_base_file_url: str = "https://api.telegram.org/file/bot"
    # The project the trainer console exports into and retrains (config.yml, domain.yml,
    # data/, models/, reports/): this repository unless PROJECT_DIR says otherwise.
    project_dir: Path = ROOT
    telegram_bot_username: str | None = None  # for the widget's t.me link when Telegram runs elsewhere

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        defaults = cls()
        return cls(
            database_url=environ.get("DATABASE_URL", defaults.database_url),
            rasa_url=",".join(
                url.strip().rstrip("/") for url in environ.get("RASA_URL", defaults.rasa_url).split(",")
            ),
            action_server_url=environ.get("ACTION_SERVER_URL", defaults.action_server_url).rstrip("/"),
            host=environ.get("GATEWAY_HOST", defaults.host),
            port=int(environ.get("GATEWAY_PORT", defaults.port)),
            rasa_timeout_seconds=float(environ.get("RASA_TIMEOUT_SECONDS", defaults.rasa_timeout_seconds)),
            max_message_chars=int(environ.get("MAX_MESSAGE_CHARS", defaults.max_message_chars)),
            rasa_text_chars=int(environ.get("RASA_TEXT_CHARS", defaults.rasa_text_chars)),
            limits=LimitSettings(
                sender_per_minute=int(
                    environ.get("SENDER_MESSAGES_PER_MINUTE", defaults.limits.sender_per_minute)
                ),
                sender_burst=int(environ.get("SENDER_BURST", defaults.limits.sender_burst)),
                address_per_minute=int(
                    environ.get("ADDRESS_MESSAGES_PER_MINUTE", defaults.limits.address_per_minute)
                ),
                address_burst=int(environ.get("ADDRESS_BURST", defaults.limits.address_burst)),
                waiting_per_conversation=int(
                    environ.get("WAITING_PER_CONVERSATION", defaults.limits.waiting_per_conversation)
                ),
            ),
            trusted_proxies=parse_networks(environ.get("TRUSTED_PROXIES", "127.0.0.1,::1")),
            rasa_token=environ.get("RASA_TOKEN") or None,
            secret_key=environ.get("HELPDESK_SECRET_KEY") or None,
            rest_secret=environ.get("REST_CHANNEL_SECRET") or None,
            shop_identity_secret=environ.get("SHOP_IDENTITY_SECRET") or None,
            redis_url=environ.get("REDIS_URL") or None,
            allowed_origins=_origins(environ.get("HELPDESK_ALLOWED_ORIGINS", "")),
            secure_cookies=_cookie_mode(environ.get("HELPDESK_SECURE_COOKIES", "")),
            widget_origins=_origins(environ.get("WIDGET_ALLOWED_ORIGINS", "")),
            telegram_token=environ.get("TELEGRAM_TOKEN") or None,
            telegram_mode=environ.get("TELEGRAM_MODE", defaults.telegram_mode),
            telegram_webhook_url=environ.get("TELEGRAM_WEBHOOK_URL") or None,
            telegram_secret_token=environ.get("TELEGRAM_SECRET_TOKEN") or None,
            telegram_base_url=environ.get("TELEGRAM_BASE_URL", defaults.telegram_base_url),
            telegram_base_file_url=environ.get("TELEGRAM_BASE_FILE_URL", defaults.telegram_base_file_url),
            telegram_bot_username=environ.get("TELEGRAM_BOT_USERNAME") or None,
            project_dir=Path(environ.get("PROJECT_DIR") or ROOT),
        )

    @property
    def rasa_urls(self) -> tuple[str, ...]:
        return tuple(url for url in self.rasa_url.split(",") if url)

    def check(self) -> None:
        """Refuses settings that cannot work, saying which."""
        if self.secure_cookies not in COOKIE_MODES:
            raise ValueError(
                f"HELPDESK_SECURE_COOKIES must be auto, always or never, not {self.secure_cookies!r}"
            )
        if self.telegram_mode not in ("polling", "webhook"):
            raise ValueError(f"TELEGRAM_MODE must be polling or webhook, not {self.telegram_mode!r}")
        webhook = self.telegram_token and self.telegram_mode == "webhook"
        if webhook and not (self.telegram_webhook_url and self.telegram_secret_token):
            raise ValueError("TELEGRAM_MODE=webhook needs TELEGRAM_WEBHOOK_URL and TELEGRAM_SECRET_TOKEN")

    def session_secret(self) -> str:
        """HELPDESK_SECRET_KEY, or the key generated on the first start (never in the repo)."""
        if self.secret_key:
            return self.secret_key
        path = self.secret_key_file
        if not path.exists():
            # Written whole under another name, then linked into place: two processes
            # starting together both end up reading the one key that won.
            path.parent.mkdir(parents=True, exist_ok=True)
            draft = path.with_name(f".{path.name}.{os.getpid()}")
            descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_urlsafe(48))
            try:
                os.link(draft, path)
            except FileExistsError:
                pass
            finally:
                draft.unlink()
        return path.read_text().strip()


def _cookie_mode(value: str) -> str:
    """HELPDESK_SECURE_COOKIES: auto (also when unset), always or never; 1/true/yes, the
    setting's old values, still mean always, and 0/false/no never."""
    mode = value.strip().lower() or "auto"
    if mode in ("1", "true", "yes"):
        return "always"
    if mode in ("0", "false", "no"):
        return "never"
    return mode


def _origins(value: str) -> tuple[str, ...]:
    return tuple(origin.strip().rstrip("/") for origin in value.split(",") if origin.strip())
