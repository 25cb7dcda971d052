"""The shop's order system, behind one interface (`ShopBackend`)."""

from actions.shop.base import Order, OrderItem, ReturnRequest, ShopBackend

__all__ = ["Order", "OrderItem", "ReturnRequest", "ShopBackend"]
