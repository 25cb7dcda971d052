"""A local stand-in for the Telegram Bot API, for tests that run a real Telegram client on loopback.

Point python-telegram-bot (or any client) at it with ``base_url`` / ``base_file_url``: it builds
``{base_url}{token}/{method}`` and ``{base_file_url}{token}/{file_path}``, exactly like
``https://api.telegram.org/bot`` and ``https://api.telegram.org/file/bot``.

Two ways to serve it:

* in an async test, on the test's own loop (pytest-aiohttp)::

      fake = FakeBotApi(TOKEN)
      fake.attach(await aiohttp_server(fake.app()))
      await fake.send_text(42, "hello")
      call = await fake.wait_sent(method="sendMessage", chat_id=42)

* in a synchronous test, on its own loop in a background thread::

      with FakeBotApi.running(TOKEN) as fake:
          fake.send_text_sync(42, "hello")
          call = fake.wait_sent_sync(method="sendMessage", chat_id=42)

The customer's side (``send_text``, ``press_button``, ``send_photo``, ``send_sticker``,
``send_update``) builds an Update with the next ``update_id`` and either queues it for
``getUpdates`` or, while a webhook is set, POSTs it to the webhook with the
``X-Telegram-Bot-Api-Secret-Token`` header. They return the ``update_id`` when the update is queued,
and the webhook's HTTP status when it is POSTed; ``secret_token="wrong"`` (or None: no header)
overrides the secret registered with setWebhook. Those helpers are coroutines; each has a ``*_sync``
twin for synchronous tests (which must not run on the stand-in's own loop).

What the bot sends is recorded in ``fake.sent``: one dict per call of sendMessage, sendPhoto,
sendChatAction, answerCallbackQuery, editMessageText and editMessageReplyMarkup, holding
``"method"``, the decoded parameters (``reply_markup`` as a dict, uploaded files as ``bytes``) and
``"result"`` (what the stand-in answered, e.g. the Message with its ``message_id``).

Unlike Telegram, webhooks may be plain ``http://`` URLs on any port, and every chat is private.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

DEFAULT_TOKEN = "123456789:AAHarborLaneTestTokenForTheStandIn_x"
BOT_USERNAME = "harborlane_test_bot"

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
LONG_POLL_CAP = 2.0  # seconds: getUpdates never waits longer, whatever `timeout` asks for

# The calls recorded in `sent`.
SENDING_METHODS = frozenset(
    "sendMessage sendPhoto sendChatAction answerCallbackQuery editMessageText editMessageReplyMarkup".split()
)

# Parameters whose values are plain strings on the wire; everything else arrives JSON-encoded
# (numbers, booleans, objects such as reply_markup) and is decoded.
STRING_PARAMS = frozenset(
    "text caption parse_mode url secret_token callback_query_id file_id action inline_message_id "
    "ip_address business_connection_id message_effect_id emoji photo document sticker audio video "
    "voice animation thumbnail certificate title description question address first_name last_name "
    "phone_number".split()
)

CHAT_ACTIONS = frozenset(
    "typing upload_photo record_video upload_video record_voice upload_voice upload_document "
    "choose_sticker find_location record_video_note upload_video_note".split()
)

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)

_T = TypeVar("_T")

# What Telegram marks as a bot_command entity at the start of a text: "/start", "/start@some_bot".
_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,})?")


class _Registered:
    """Marker: send the secret_token registered with setWebhook (the default)."""

    def __repr__(self) -> str:
        return "REGISTERED"


REGISTERED: Any = _Registered()


class ApiError(Exception):
    """Raised by a method implementation; becomes Telegram's error envelope."""

    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


def _error_response(status: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _update_type(update: dict[str, Any]) -> str:
    return next((key for key in update if key != "update_id"), "")


class FakeBotApi:
    """The Telegram Bot API, as far as the assistant's tests need it, on aiohttp."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_username: str = BOT_USERNAME,
        bot_first_name: str = "Harbor Lane (test)",
        long_poll_cap: float = LONG_POLL_CAP,
    ) -> None:
        self.token = token
        prefix = token.split(":", 1)[0]
        self.bot_user: dict[str, Any] = {
            "id": int(prefix) if prefix.isdigit() else 1_000_001,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.long_poll_cap = long_poll_cap

        self.sent: list[dict[str, Any]] = []  # the bot's sendMessage & co., in order
        self.calls: list[dict[str, Any]] = []  # every method call but getUpdates, in order
        self.webhook: dict[str, Any] | None = None  # url, secret_token, drop_pending_updates, ...
        self.webhook_deliveries: list[dict[str, Any]] = []  # update_id, status, secret_token sent
        self.blocked: set[int] = set()  # chats whose user blocked the bot: sending gets 403

        self._root_url: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.RLock()
        self._sent_changed = threading.Condition(self._lock)
        self._sent_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

        # Loop-side state (touched only on the stand-in's loop, apart from the file registry).
        self._updates: list[dict[str, Any]] = []
        self._pollers: list[asyncio.Future[None]] = []
        self._poll_generation = 0
        self._allowed_updates: list[str] = []
        self._update_ids = itertools.count(100_000_001)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._users: dict[int, dict[str, Any]] = {}
        self._callback_ids = itertools.count(1)
        self._open_callback_queries: set[str] = set()
        self._failures: dict[str, list[ApiError]] = {}
        self._file_ids = itertools.count(1)
        self._files: dict[str, dict[str, Any]] = {}  # file_id -> File object
        self._file_data: dict[str, bytes] = {}  # file_path -> bytes
        self._last_webhook_error: tuple[int, str] | None = None

        handlers: dict[str, Callable[[dict[str, Any]], Coroutine[Any, Any, Any]]] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendChatAction": self._send_chat_action,
            "answerCallbackQuery": self._answer_callback_query,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "getFile": self._get_file,
        }
        # Method names are case-insensitive, as on Telegram; calls are recorded under these names.
        self._methods = {name.lower(): (name, handler) for name, handler in handlers.items()}

    # ------------------------------------------------------------------ serving

    def app(self) -> web.Application:
        """A fresh aiohttp application serving the API (one per server)."""
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_file)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    def attach(self, server: Any) -> FakeBotApi:
        """Tell the stand-in where it is served: an aiohttp TestServer (anything with
        ``make_url``) or a root URL such as ``http://127.0.0.1:8081``."""
        root = str(server.make_url("")) if hasattr(server, "make_url") else str(server)
        self._root_url = root.rstrip("/")
        return self

    @property
    def root_url(self) -> str:
        if self._root_url is None:
            raise RuntimeError("FakeBotApi: call fake.attach(server) after starting fake.app()")
        return self._root_url

    @property
    def base_url(self) -> str:
        """For ``base_url=``: ``http://127.0.0.1:PORT/bot``."""
        return f"{self.root_url}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``base_file_url=``: ``http://127.0.0.1:PORT/file/bot``."""
        return f"{self.root_url}/file/bot"

    @classmethod
    @contextlib.contextmanager
    def running(cls, token: str = DEFAULT_TOKEN, **kwargs: Any) -> Iterator[FakeBotApi]:
        """Serve a new stand-in on a free loopback port, on its own event loop in a thread."""
        fake = cls(token, **kwargs)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="FakeBotApi", daemon=True)
        thread.start()
        runner = web.AppRunner(fake.app(), handler_cancellation=True, shutdown_timeout=1.0)

        async def start() -> None:
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            fake.attach(f"http://{host}:{port}")

        try:
            asyncio.run_coroutine_threadsafe(start(), loop).result(10)
            yield fake
        finally:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()

    async def _on_startup(self, app: web.Application) -> None:
        self._loop = asyncio.get_running_loop()

    async def _on_shutdown(self, app: web.Application) -> None:
        self._poll_generation += 1
        self._wake_pollers()

    # ------------------------------------------------------------------ test controls

    def register_file(self, data: bytes, *, kind: str = "photos", extension: str = "jpg") -> dict[str, Any]:
        """Make ``data`` downloadable; returns the File object (file_id, file_unique_id,
        file_size, file_path) that getFile answers for its file_id."""
        with self._lock:
            number = next(self._file_ids)
            file = {
                "file_id": f"AgACAgIAAxkBAAIB{number:06d}TestFileId",
                "file_unique_id": f"AQAD{number:06d}",
                "file_size": len(data),
                "file_path": f"{kind}/file_{number}.{extension}",
            }
            self._files[file["file_id"]] = file
            self._file_data[file["file_path"]] = bytes(data)
            return dict(file)

    def fail_next(
        self,
        method: str,
        status: int = 400,
        description: str = "Bad Request",
        *,
        retry_after: int | None = None,
    ) -> None:
        """The next call of ``method`` answers this error (e.g. 429 with ``retry_after``)."""
        parameters = {"retry_after": retry_after} if retry_after is not None else None
        with self._lock:
            self._failures.setdefault(method.lower(), []).append(ApiError(status, description, parameters))

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates queued for getUpdates and not yet confirmed."""
        return copy.deepcopy(list(self._updates))

    def messages_to(self, chat_id: int | str) -> list[str]:
        """The texts the bot sent to a chat with sendMessage, in order."""
        with self._lock:
            return [
                call["text"]
                for call in self.sent
                if call["method"] == "sendMessage" and str(call.get("chat_id")) == str(chat_id)
            ]

    def message(self, chat_id: int, message_id: int) -> dict[str, Any]:
        """A message as it stands now (customer's or bot's, after edits)."""
        with self._lock:
            return copy.deepcopy(self._messages[(int(chat_id), int(message_id))])

    # ------------------------------------------------------------------ waiting for the bot

    def _find_sent(
        self, predicate: Callable[[dict[str, Any]], bool] | None, since: int, match: dict[str, Any]
    ) -> dict[str, Any] | None:
        for call in self.sent[since:]:
            if all(str(call.get(key)) == str(value) for key, value in match.items()) and (
                predicate is None or predicate(call)
            ):
                return call
        return None

    def _timeout_error(self, timeout: float, match: dict[str, Any]) -> TimeoutError:
        with self._lock:
            recent = [{k: v for k, v in call.items() if k != "result"} for call in self.sent[-5:]]
        return TimeoutError(f"the bot sent nothing matching {match or ''} in {timeout}s; last sent: {recent}")

    async def wait_sent(
        self,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 10.0,
        *,
        since: int = 0,
        **match: Any,
    ) -> dict[str, Any]:
        """The first call in ``sent[since:]`` matching ``predicate`` and the ``match`` fields
        (``method="sendMessage", chat_id=42``; compared as strings), waiting up to ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with self._lock:
                found = self._find_sent(predicate, since, match)
                if found is None:
                    future: asyncio.Future[None] = loop.create_future()
                    self._sent_waiters.append((loop, future))
            if found is not None:
                return found
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise self._timeout_error(timeout, match)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(future, remaining)
            finally:
                with self._lock, contextlib.suppress(ValueError):
                    self._sent_waiters.remove((loop, future))

    def wait_sent_sync(
        self,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 10.0,
        *,
        since: int = 0,
        **match: Any,
    ) -> dict[str, Any]:
        """``wait_sent`` for synchronous tests (blocks this thread; not on the stand-in's loop)."""
        self._refuse_own_loop("wait_sent_sync", "wait_sent")
        found: list[dict[str, Any]] = []

        def ready() -> bool:
            call = self._find_sent(predicate, since, match)
            if call is not None:
                found.append(call)
            return call is not None

        with self._sent_changed:
            if not self._sent_changed.wait_for(ready, timeout):
                raise self._timeout_error(timeout, match)
        return found[0]

    def _record(self, method: str, params: dict[str, Any], result: Any) -> None:
        call = {"method": method, **params, "result": copy.deepcopy(result)}
        with self._lock:
            self.calls.append(call)
            if method in SENDING_METHODS:
                self.sent.append(call)
                waiters = list(self._sent_waiters)
                self._sent_changed.notify_all()
            else:
                waiters = []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed
                loop.call_soon_threadsafe(_resolve, future)

    # ------------------------------------------------------------------ playing the customer

    async def send_text(
        self,
        chat_id: int,
        text: str,
        first_name: str = "Jane",
        username: str | None = None,
        *,
        secret_token: Any = REGISTERED,
    ) -> int:
        """The customer writes ``text``. Returns the update_id when queued for getUpdates, or the
        webhook's HTTP status when a webhook is set. A leading "/command" gets a bot_command entity."""

        async def go() -> int:
            fields: dict[str, Any] = {"text": text}
            command = _COMMAND.match(text)
            if command:
                fields["entities"] = [{"type": "bot_command", "offset": 0, "length": command.end()}]
            message = self._customer_message(chat_id, first_name, username, fields)
            return await self._deliver({"message": message}, secret_token)

        return await self._on_loop(go())

    async def press_button(
        self, chat_id: int, message_id: int, data: str, *, check: bool = True, secret_token: Any = REGISTERED
    ) -> int:
        """The customer presses the inline button carrying ``data`` under the bot's message
        ``message_id``. With ``check``, the message must show such a button."""

        async def go() -> int:
            message = self._messages.get((int(chat_id), int(message_id)))
            if message is None:
                raise KeyError(f"no message {message_id} in chat {chat_id}")
            if check:
                buttons = [
                    button.get("callback_data")
                    for row in (message.get("reply_markup") or {}).get("inline_keyboard", [])
                    for button in row
                ]
                if data not in buttons:
                    raise ValueError(f"message {message_id} has no button with data {data!r}: {buttons}")
            query_id = f"{next(self._callback_ids)}{abs(int(chat_id)) % 10**9:09d}"
            self._open_callback_queries.add(query_id)
            query = {
                "id": query_id,
                "from": self._user(chat_id),
                "chat_instance": str(-(4_000_000_000_000_000_000 + abs(int(chat_id)))),
                "message": copy.deepcopy(message),
                "data": data,
            }
            return await self._deliver({"callback_query": query}, secret_token)

        return await self._on_loop(go())

    async def send_photo(
        self,
        chat_id: int,
        data: bytes,
        caption: str | None = None,
        first_name: str = "Jane",
        username: str | None = None,
        *,
        secret_token: Any = REGISTERED,
    ) -> int:
        """The customer sends a photo (two PhotoSizes, both downloadable as ``data``)."""

        async def go() -> int:
            fields: dict[str, Any] = {"photo": self._photo_sizes(data)}
            if caption is not None:
                fields["caption"] = caption
            message = self._customer_message(chat_id, first_name, username, fields)
            return await self._deliver({"message": message}, secret_token)

        return await self._on_loop(go())

    async def send_sticker(
        self,
        chat_id: int,
        emoji: str = "👍",
        first_name: str = "Jane",
        username: str | None = None,
        *,
        secret_token: Any = REGISTERED,
    ) -> int:
        """The customer sends a (static, regular) sticker."""

        async def go() -> int:
            file = self.register_file(b"RIFF\x00\x00\x00\x00WEBPVP8 ", kind="stickers", extension="webp")
            sticker = {
                "file_id": file["file_id"],
                "file_unique_id": file["file_unique_id"],
                "file_size": file["file_size"],
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "type": "regular",
                "emoji": emoji,
                "set_name": "HarborLaneTestStickers",
            }
            message = self._customer_message(chat_id, first_name, username, {"sticker": sticker})
            return await self._deliver({"message": message}, secret_token)

        return await self._on_loop(go())

    async def send_update(self, update: dict[str, Any], *, secret_token: Any = REGISTERED) -> int:
        """Any Update: ``update`` without ``update_id`` (e.g. ``{"edited_message": {...}}``)."""
        return await self._on_loop(self._deliver(copy.deepcopy(update), secret_token))

    def send_text_sync(self, *args: Any, **kwargs: Any) -> int:
        """``send_text`` for synchronous tests (the stand-in runs in another thread)."""
        return self._run_sync(self.send_text(*args, **kwargs))

    def press_button_sync(self, *args: Any, **kwargs: Any) -> int:
        """``press_button`` for synchronous tests (the stand-in runs in another thread)."""
        return self._run_sync(self.press_button(*args, **kwargs))

    def send_photo_sync(self, *args: Any, **kwargs: Any) -> int:
        """``send_photo`` for synchronous tests (the stand-in runs in another thread)."""
        return self._run_sync(self.send_photo(*args, **kwargs))

    def send_sticker_sync(self, *args: Any, **kwargs: Any) -> int:
        """``send_sticker`` for synchronous tests (the stand-in runs in another thread)."""
        return self._run_sync(self.send_sticker(*args, **kwargs))

    def send_update_sync(self, *args: Any, **kwargs: Any) -> int:
        """``send_update`` for synchronous tests (the stand-in runs in another thread)."""
        return self._run_sync(self.send_update(*args, **kwargs))

    # ------------------------------------------------------------------ loop plumbing

    def _running_loop(self) -> asyncio.AbstractEventLoop | None:
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return None

    def _refuse_own_loop(self, name: str, instead: str) -> None:
        if self._loop is not None and self._running_loop() is self._loop:
            raise RuntimeError(f"{name} would block the stand-in's own event loop: await fake.{instead}(...)")

    async def _on_loop(self, coro: Coroutine[Any, Any, _T]) -> _T:
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("FakeBotApi is not serving yet")
        if loop is asyncio.get_running_loop():
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    def _run_sync(self, coro: Coroutine[Any, Any, _T], timeout: float = 30.0) -> _T:
        loop = self._loop
        if loop is None or (self._running_loop() is loop):
            coro.close()
            if loop is None:
                raise RuntimeError("FakeBotApi is not serving yet")
            raise RuntimeError(
                "a *_sync helper would block the stand-in's own event loop: await the async one"
            )
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    # ------------------------------------------------------------------ building updates

    def _next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def _user(
        self, chat_id: int, first_name: str | None = None, username: str | None = None
    ) -> dict[str, Any]:
        chat_id = int(chat_id)
        user = self._users.get(chat_id)
        if user is None or first_name is not None and user["first_name"] != first_name:
            user = {"id": chat_id, "is_bot": False, "first_name": first_name or "Jane", "language_code": "en"}
        if username is not None:
            user["username"] = username
        self._users[chat_id] = user
        return dict(user)

    def _chat(self, chat_id: int) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": int(chat_id), "type": "private"}
        user = self._users.get(int(chat_id))
        if user is not None:
            chat["first_name"] = user["first_name"]
            if "username" in user:
                chat["username"] = user["username"]
        return chat

    def _store_message(self, chat_id: int, sender: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(chat_id)
        message = {
            "message_id": self._next_message_id(chat_id),
            "from": sender,
            "chat": self._chat(chat_id),
            "date": int(time.time()),
            **fields,
        }
        self._messages[(chat_id, message["message_id"])] = message
        return copy.deepcopy(message)

    def _customer_message(
        self, chat_id: int, first_name: str, username: str | None, fields: dict[str, Any]
    ) -> dict[str, Any]:
        sender = self._user(chat_id, first_name, username)
        return self._store_message(chat_id, sender, fields)

    def _photo_sizes(self, data: bytes) -> list[dict[str, Any]]:
        sizes = []
        for width, height in ((320, 240), (1280, 960)):
            file = self.register_file(data)
            sizes.append(
                {
                    "file_id": file["file_id"],
                    "file_unique_id": file["file_unique_id"],
                    "file_size": file["file_size"],
                    "width": width,
                    "height": height,
                }
            )
        return sizes

    async def _deliver(self, update: dict[str, Any], secret_token: Any) -> int:
        update = {"update_id": next(self._update_ids), **update}
        webhook = self.webhook
        if webhook is None:
            self._updates.append(update)
            self._wake_pollers()
            return update["update_id"]
        secret = webhook.get("secret_token") if secret_token is REGISTERED else secret_token
        headers = {SECRET_HEADER: secret} if secret else {}
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
                session.post(webhook["url"], json=update, headers=headers) as response,
            ):
                status = response.status
                await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            self._last_webhook_error = (int(time.time()), f"Connection failed: {exc!r}")
            raise
        if not 200 <= status < 300:
            self._last_webhook_error = (
                int(time.time()),
                f"Wrong response from the webhook: {status} {response.reason}",
            )
        self.webhook_deliveries.append(
            {"update_id": update["update_id"], "status": status, "secret_token": secret}
        )
        return status

    def _wake_pollers(self) -> None:
        for future in self._pollers:
            _resolve(future)

    # ------------------------------------------------------------------ HTTP

    async def _handle_method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error_response(404, "Not Found")
        method = request.match_info["method"]
        known = self._methods.get(method.lower())
        try:
            params = await self._read_params(request)
        except ValueError as exc:
            return _error_response(400, f"Bad Request: {exc}")
        if known is None:
            return _error_response(400, "Bad Request: method not implemented in the stand-in")
        name, handler = known
        with self._lock:
            failures = self._failures.get(name.lower())
            failure = failures.pop(0) if failures else None
        try:
            if failure is not None:
                raise failure
            result = await handler(params)
        except ApiError as exc:
            return _error_response(exc.status, exc.description, exc.parameters)
        if name != "getUpdates":
            self._record(name, params, result)
        return web.json_response({"ok": True, "result": result})

    async def _handle_file(self, request: web.Request) -> web.Response:
        data = self._file_data.get(request.match_info["file_path"])
        if request.match_info["token"] != self.token or data is None:
            return _error_response(404, "Not Found")
        return web.Response(body=data, content_type="application/octet-stream")

    @staticmethod
    async def _read_params(request: web.Request) -> dict[str, Any]:
        raw: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            content_type = request.content_type
            if content_type == "application/json":
                body = await request.json()
                if not isinstance(body, dict):
                    raise ValueError("JSON body must be an object")
                raw.update(body)
            elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                for key, value in (await request.post()).items():
                    if isinstance(value, web.FileField):
                        with value.file:
                            raw[key] = value.file.read()
                    else:
                        raw[key] = value
            elif await request.read():
                raise ValueError(f"unsupported Content-Type {content_type}")
        params: dict[str, Any] = {}
        for key, value in raw.items():
            if isinstance(value, str) and key not in STRING_PARAMS:
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            params[key] = value
        return params

    # ------------------------------------------------------------------ methods

    @staticmethod
    def _chat_id(params: dict[str, Any]) -> int:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise ApiError(400, "Bad Request: chat_id is empty")
        try:
            return int(chat_id)
        except (TypeError, ValueError):
            raise ApiError(400, "Bad Request: chat not found") from None

    def _check_can_send(self, chat_id: int) -> None:
        if chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")

    @staticmethod
    def _inline_markup(params: dict[str, Any]) -> dict[str, Any] | None:
        """The reply_markup a Message shows: only inline keyboards come back in Telegram's answer."""
        markup = params.get("reply_markup")
        if markup is None or markup == "":
            return None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            return None
        for row in markup["inline_keyboard"]:
            for button in row:
                if "text" not in button:
                    raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup

    def _reply_to(self, chat_id: int, params: dict[str, Any]) -> dict[str, Any]:
        reply = params.get("reply_parameters")
        reply_id = reply.get("message_id") if isinstance(reply, dict) else params.get("reply_to_message_id")
        if reply_id is None:
            return {}
        original = self._messages.get((chat_id, int(reply_id)))
        if original is None:
            allowed = params.get("allow_sending_without_reply") or (
                isinstance(reply, dict) and reply.get("allow_sending_without_reply")
            )
            if allowed:
                return {}
            raise ApiError(400, "Bad Request: message to be replied not found")
        original = copy.deepcopy(original)
        original.pop("reply_to_message", None)
        return {"reply_to_message": original}

    def _bot_message(self, chat_id: int, params: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        fields = {**fields, **self._reply_to(chat_id, params)}
        for key in ("entities", "caption_entities"):
            if params.get(key):
                fields[key] = params[key]
        if params.get("protect_content"):
            fields["has_protected_content"] = True
        markup = self._inline_markup(params)
        if markup is not None:
            fields["reply_markup"] = markup
        return self._store_message(chat_id, dict(self.bot_user), fields)

    async def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return dict(self.bot_user)

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        limit = max(1, min(100, int(params.get("limit") or 100)))
        timeout = max(0.0, min(float(params.get("timeout") or 0), self.long_poll_cap))
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = [str(kind) for kind in allowed]

        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_pollers()  # an older getUpdates still waiting is terminated, as on Telegram

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if offset > 0:
                self._updates = [update for update in self._updates if update["update_id"] >= offset]
            candidates = [
                update
                for update in self._updates
                if not self._allowed_updates or _update_type(update) in self._allowed_updates
            ]
            batch = candidates[offset:][:limit] if offset < 0 else candidates[:limit]
            remaining = deadline - loop.time()
            if batch or remaining <= 0:
                return copy.deepcopy(batch)
            future: asyncio.Future[None] = loop.create_future()
            self._pollers.append(future)
            try:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(future, remaining)
            finally:
                self._pollers.remove(future)
            if self.webhook is not None:
                raise ApiError(409, "Conflict: terminated by setWebhook request")
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )

    async def _set_webhook(self, params: dict[str, Any]) -> bool:
        url = str(params.get("url") or "")
        if not url:
            return await self._delete_webhook(params)
        if not url.startswith(("http://", "https://")):
            raise ApiError(
                400, "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"
            )
        secret = params.get("secret_token")
        if secret is not None:
            secret = str(secret)
            if not 1 <= len(secret) <= 256 or not all(
                ch.isascii() and (ch.isalnum() or ch in "_-") for ch in secret
            ):
                raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = [str(kind) for kind in allowed]
        self.webhook = {
            "url": url,
            "secret_token": secret,
            "drop_pending_updates": bool(params.get("drop_pending_updates")),
            "max_connections": int(params.get("max_connections") or 40),
            "allowed_updates": list(self._allowed_updates),
            "ip_address": params.get("ip_address"),
            "has_custom_certificate": "certificate" in params,
        }
        self._last_webhook_error = None
        self._wake_pollers()  # a waiting getUpdates is terminated with 409
        return True

    async def _delete_webhook(self, params: dict[str, Any]) -> bool:
        self.webhook = None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        webhook = self.webhook
        info: dict[str, Any] = {
            "url": webhook["url"] if webhook else "",
            "has_custom_certificate": bool(webhook and webhook["has_custom_certificate"]),
            "pending_update_count": len(self._updates),
        }
        if webhook:
            info["max_connections"] = webhook["max_connections"]
            if webhook["allowed_updates"]:
                info["allowed_updates"] = webhook["allowed_updates"]
            if webhook["ip_address"]:
                info["ip_address"] = webhook["ip_address"]
            if self._last_webhook_error:
                info["last_error_date"], info["last_error_message"] = self._last_webhook_error
        return info

    async def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat_id(params)
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        self._check_can_send(chat_id)
        return self._bot_message(chat_id, params, {"text": text})

    async def _send_photo(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat_id(params)
        photo = params.get("photo")
        if isinstance(photo, bytes):
            data = photo
        elif isinstance(photo, str) and photo in self._files:
            data = self._file_data[self._files[photo]["file_path"]]
        elif isinstance(photo, str) and photo.startswith(("http://", "https://")):
            data = b""
        else:
            raise ApiError(400, "Bad Request: there is no photo in the request")
        caption = params.get("caption")
        if caption is not None and len(str(caption)) > 1024:
            raise ApiError(400, "Bad Request: message caption is too long")
        self._check_can_send(chat_id)
        fields: dict[str, Any] = {"photo": self._photo_sizes(data)}
        if caption:
            fields["caption"] = str(caption)
        if params.get("has_spoiler"):
            fields["has_media_spoiler"] = True
        return self._bot_message(chat_id, params, fields)

    async def _send_chat_action(self, params: dict[str, Any]) -> bool:
        chat_id = self._chat_id(params)
        if params.get("action") not in CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        self._check_can_send(chat_id)
        return True

    async def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._open_callback_queries:
            raise ApiError(
                400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )
        self._open_callback_queries.discard(query_id)
        if len(str(params.get("text") or "")) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        return True

    def _editable(self, params: dict[str, Any]) -> dict[str, Any] | None:
        if params.get("inline_message_id"):
            return None
        chat_id = self._chat_id(params)
        if params.get("message_id") is None:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        message = self._messages.get((chat_id, int(params["message_id"])))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if message["from"].get("id") != self.bot_user["id"]:
            raise ApiError(400, "Bad Request: message can't be edited")
        return message

    def _apply_edit(
        self, message: dict[str, Any], changes: dict[str, Any], markup: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Edit ``message`` in place; a change to None removes the field (an edit without
        reply_markup removes the inline keyboard, as on Telegram)."""
        changes = {**changes, "reply_markup": markup}
        if all(message.get(key) == value for key, value in changes.items()):
            raise ApiError(400, NOT_MODIFIED)
        with self._lock:
            for key, value in changes.items():
                if value is None:
                    message.pop(key, None)
                else:
                    message[key] = value
            message["edit_date"] = int(time.time())
            return copy.deepcopy(message)

    async def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        markup = self._inline_markup(params)
        message = self._editable(params)
        if message is None:
            return True
        if "text" not in message:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        return self._apply_edit(message, {"text": text, "entities": params.get("entities") or None}, markup)

    async def _edit_message_reply_markup(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        markup = self._inline_markup(params)
        message = self._editable(params)
        if message is None:
            return True
        return self._apply_edit(message, {}, markup)

    async def _get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        file = self._files.get(str(params.get("file_id") or ""))
        if file is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        return dict(file)
