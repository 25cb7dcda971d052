"""Typed application state of the gateway."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import sessionmaker

from bot.router import Router
from bot.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", sessionmaker)
HTTP = web.AppKey("http", aiohttp.ClientSession)
ROUTER = web.AppKey("router", Router)
