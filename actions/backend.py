"""The one shop backend of this action server, built on first use from the settings.

SHOP_BACKEND is `demo` (the demo shop's database) or `package.module:factory`, a callable
that takes the ActionSettings and returns a ShopBackend: a real shop plugs in there.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable

from actions.settings import ActionSettings, get_settings
from actions.shop.base import ShopBackend
from actions.shop.demo import DemoShop


class ShopBackendError(RuntimeError):
    """SHOP_BACKEND names nothing that can build a backend."""


def demo_shop(settings: ActionSettings) -> ShopBackend:
    return DemoShop(settings.shop_database_url, settings.shop_seed_file)


def load_factory(spec: str) -> Callable[[ActionSettings], ShopBackend]:
    if spec == "demo":
        return demo_shop
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ShopBackendError(f"SHOP_BACKEND={spec!r}: use 'demo' or 'package.module:factory'")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ShopBackendError(f"SHOP_BACKEND={spec!r}: {error}") from error
    if not callable(factory):
        raise ShopBackendError(f"SHOP_BACKEND={spec!r} is not callable")
    return factory


@functools.lru_cache(maxsize=1)
def get_shop() -> ShopBackend:
    settings = get_settings()
    return load_factory(settings.shop_backend)(settings)
