"""The one shop backend of this action server, built on first use from the settings."""

from __future__ import annotations

import functools

from actions.settings import get_settings
from actions.shop.base import ShopBackend
from actions.shop.demo import DemoShop


@functools.lru_cache(maxsize=1)
def get_shop() -> ShopBackend:
    settings = get_settings()
    return DemoShop(settings.shop_database_url, settings.shop_seed_file)
