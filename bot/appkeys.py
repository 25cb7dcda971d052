"""Typed application state of the gateway."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from bot.router import Router
from bot.settings import Settings
from handoff.db import Database

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
HTTP = web.AppKey("http", aiohttp.ClientSession)
ROUTER = web.AppKey("router", Router)
