"""The gateway's settings: read from the environment once, then passed around."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    database_url: str = f"sqlite:///{ROOT / 'var' / 'helpdesk.db'}"
    rasa_url: str = "http://localhost:5005"
    action_server_url: str = "http://localhost:5055"
    host: str = "0.0.0.0"
    port: int = 8080
    rasa_timeout_seconds: float = 30.0
    health_timeout_seconds: float = 2.0
    max_message_chars: int = 2000
    texts_file: Path = ROOT / "bot" / "texts.yml"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        defaults = cls()
        return cls(
            database_url=environ.get("DATABASE_URL", defaults.database_url),
            rasa_url=environ.get("RASA_URL", defaults.rasa_url).rstrip("/"),
            action_server_url=environ.get("ACTION_SERVER_URL", defaults.action_server_url).rstrip("/"),
            host=environ.get("GATEWAY_HOST", defaults.host),
            port=int(environ.get("GATEWAY_PORT", defaults.port)),
            rasa_timeout_seconds=float(environ.get("RASA_TIMEOUT_SECONDS", defaults.rasa_timeout_seconds)),
            max_message_chars=int(environ.get("MAX_MESSAGE_CHARS", defaults.max_message_chars)),
        )
