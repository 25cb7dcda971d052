"""Typed application state of the gateway."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from bot.channels import Channel
from bot.router import Router
from bot.settings import Settings
from handoff.auth import Backoff
from handoff.db import Database
from handoff.hub import LocalHub, RedisHub
from handoff.service import HelpdeskConfig

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
HTTP = web.AppKey("http", aiohttp.ClientSession)
ROUTER = web.AppKey("router", Router)
HUB = web.AppKey("hub", LocalHub | RedisHub)
CONFIG = web.AppKey("helpdesk_config", HelpdeskConfig)
TEXTS = web.AppKey("texts", dict)
# Failed link-code claims per claiming chat or web session and per address (bot/channels/linking.py).
LINK_THROTTLE = web.AppKey("link_throttle", Backoff)
# The push channels (bot.delivery), each under its own key: Telegram's is set only while on.
SOCKETIO = web.AppKey("socketio_channel", Channel)  # bot.channels.socketio.SocketIOChannel
TELEGRAM = web.AppKey("telegram_channel", Channel)  # bot.channels.telegram.TelegramChannel
