"""The action server's settings, read from the environment once, on first use."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ActionSettings:
    shop_database_url: str
    shop_seed_file: Path
    max_verification_attempts: int
    shop_backend: str = "demo"
    knowledge_base_dir: Path = ROOT / "knowledge_base"

    @classmethod
    def from_env(cls, environ: os._Environ[str] | dict[str, str] = os.environ) -> ActionSettings:
        return cls(
            shop_database_url=environ.get("SHOP_DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'shop.db'}"),
            shop_seed_file=Path(environ.get("SHOP_SEED_FILE", ROOT / "seeds" / "demo_shop.yml")),
            max_verification_attempts=int(environ.get("MAX_VERIFICATION_ATTEMPTS", "3")),
            shop_backend=environ.get("SHOP_BACKEND", "demo"),
            knowledge_base_dir=Path(environ.get("KNOWLEDGE_BASE_DIR", ROOT / "knowledge_base")),
        )


@functools.lru_cache(maxsize=1)
def get_settings() -> ActionSettings:
    return ActionSettings.from_env()
