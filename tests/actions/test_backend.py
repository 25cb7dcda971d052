"""SHOP_BACKEND: the demo shop by default, a shop's own factory by name, a clear error otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from actions.backend import ShopBackendError, demo_shop, load_factory
from actions.settings import ActionSettings
from actions.shop.demo import DemoShop


def build_demo_in(settings: ActionSettings) -> DemoShop:
    """A stand-in for a shop's own factory: anything importable that takes the settings."""
    return DemoShop(settings.shop_database_url, settings.shop_seed_file)


def test_demo_is_the_default(tmp_path: Path) -> None:
    settings = ActionSettings.from_env({"SHOP_DATABASE_URL": f"sqlite:///{tmp_path / 'shop.db'}"})
    assert settings.shop_backend == "demo"
    assert load_factory(settings.shop_backend) is demo_shop


def test_a_factory_is_found_by_its_dotted_name(tmp_path: Path) -> None:
    settings = ActionSettings.from_env(
        {
            "SHOP_DATABASE_URL": f"sqlite:///{tmp_path / 'shop.db'}",
            "SHOP_BACKEND": "tests.actions.test_backend:build_demo_in",
        }
    )
    assert isinstance(load_factory(settings.shop_backend)(settings), DemoShop)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("shopify", "use 'demo' or 'package.module:factory'"),
        ("no_such_package.shop:build", "No module named"),
        ("actions.backend:no_such_factory", "no_such_factory"),
        ("actions.settings:ROOT", "not callable"),
    ],
)
def test_a_bad_name_says_what_is_wrong(spec: str, says: str) -> None:
    with pytest.raises(ShopBackendError, match=says):
        load_factory(spec)
