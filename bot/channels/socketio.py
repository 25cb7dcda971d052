"""The web channel: Socket.IO on the gateway, speaking Rasa's socketio channel protocol.

Events and payloads are those of Rasa's `SocketIOInput` with session persistence, so the
widgets Rasa users already embed (rasa-webchat) work unchanged:

- the client sends `session_request` `{"session_id": id or null}`; the gateway answers
  `session_confirm` with the id, and the socket joins that session's room. The id the
  client holds is issued by the gateway: a random session, signed with the gateway's key
  for the page's Origin (`<session>.<signature>`). An id the client made up, one signed for
  another site, or none at all starts a new, empty session: knowing another customer's
  session is not enough to read their conversation from elsewhere;
- `user_uttered` `{"message", "session_id", "customData"}` goes through the router as any
  channel's message; each reply comes back as `bot_uttered`: `{"text"}`, `{"text",
  "quick_replies": [{"content_type": "text", "title", "payload"}]}` for buttons, or
  `{"attachment": ...}` for an image.

The gateway's own additions, which other widgets ignore: `channels` `{"telegram": bot username
or null}` after each `session_confirm`, so the widget offers Telegram only when it is on;
`helpdesk_status` `{"mode", "agent"}` when a person is waited for, joins, or hands back;
`link_request` -> `link_code` and `link_claim` -> `link_result` for moving to Telegram and back;
`rate_limited` `{"message", "text", "retry_after"}` for a message refused by the rate limits
(bot/limits.py): it was not stored, and the widget puts `text` back in the reply box.
Lines an agent writes while the customer is away are delivered when a socket of that
conversation connects again.

With REDIS_URL set (scale mode, several gateways), Socket.IO runs on python-socketio's
`AsyncRedisManager`: what is emitted to a session's or a conversation's room reaches its
sockets on every gateway (a customer with two tabs, each on another gateway, sees each reply
once in both). What only this gateway should send goes out with `ignore_queue`: the
answers to one socket, and the helpdesk status, which every gateway with sockets of the
conversation sends to its own (bot/delivery.py hands it to every gateway). Emitting always
reaches this gateway's own sockets first, so with Redis down a customer is still answered
on the gateway they are connected to.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import socketio
from aiohttp import web
from itsdangerous import BadSignature, Signer
from sqlalchemy.exc import SQLAlchemyError

from bot.appkeys import DATABASE, ROUTER, SETTINGS, TELEGRAM, TEXTS
from bot.channels.linking import TooManyWrongCodes, claim_link_code
from bot.limits import TooManyMessages, refusal_text
from bot.router import HelpdeskUnavailable, IncomingMessage
from handoff import conversations, identity
from handoff.addresses import client_address
from handoff.api import plain_text

logger = logging.getLogger(__name__)

CHANNEL = "socketio"
SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
SOCKETIO_TOPIC = "gateway:socketio"  # the Redis channel the gateways' Socket.IO managers share


def bot_uttered(reply: dict[str, Any]) -> dict[str, Any]:
    """A Rasa REST reply as Rasa's socketio channel sends it."""
    if reply.get("buttons"):
        quick_replies = [
            {"content_type": "text", "title": button.get("title"), "payload": button.get("payload")}
            for button in reply["buttons"]
        ]
        return {"text": reply.get("text") or "", "quick_replies": quick_replies}
    if reply.get("image"):
        return {"attachment": {"type": "image", "payload": {"src": reply["image"]}}}
    if reply.get("text") is not None:
        return {"text": reply["text"]}
    return {key: value for key, value in reply.items() if key not in ("recipient_id", "id")}


def conversation_room(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"


class SessionTokens:
    """The web sessions' ids as the widget holds them: `<session>.<signature>`, signed with
    the gateway's key for the page's Origin."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def _signer(self, origin: str) -> Signer:
        return Signer(self._secret, salt=f"web-session:{origin}")

    def issue(self, session_id: str, origin: str) -> str:
        return self._signer(origin).sign(session_id).decode("ascii")

    def session_of(self, token: Any, origin: str) -> str | None:
        """The session a token the gateway issued for this Origin names; None for any other."""
        if not isinstance(token, str) or len(token) > 200:
            return None
        try:
            session_id = self._signer(origin).unsign(token).decode("ascii")
        except (BadSignature, UnicodeDecodeError):
            return None
        if not SESSION_ID.match(session_id):
            return None
        # Exactly the token issued (its signature is verified already): base64 leaves spare
        # bits in the signature's last character, so a few altered tokens verified too.
        return session_id if self.issue(session_id, origin) == token else None


class SocketIOChannel:
    def __init__(self, app: web.Application) -> None:
        settings = app[SETTINGS]
        self.app = app
        self.tokens = SessionTokens(settings.session_secret())  # the web sessions' ids
        self.server = socketio.AsyncServer(
            async_mode="aiohttp",
            client_manager=(
                socketio.AsyncRedisManager(settings.redis_url, channel=SOCKETIO_TOPIC)
                if settings.redis_url
                else None  # python-socketio's in-process manager
            ),
            # A widget is embedded on the shop's own site, another origin than the gateway's.
            cors_allowed_origins=list(settings.widget_origins) or "*",
            max_http_buffer_size=64 * 1024,
            logger=False,
            engineio_logger=False,
        )
        self.server.attach(app, socketio_path="socket.io")
        self.server.on("connect", self.connect)
        self.server.on("session_request", self.session_request)
        self.server.on("user_uttered", self.user_uttered)
        self.server.on("link_request", self.link_request)
        self.server.on("link_claim", self.link_claim)
        app.on_shutdown.append(self._shutdown)

    async def _shutdown(self, app: web.Application) -> None:
        # Ends Engine.IO's background task with the gateway, rather than leaving it pending.
        await self.server.shutdown()

    async def _to_socket(self, sid: str, event: str, data: Any) -> None:
        """To one socket connected to this gateway: not through Redis."""
        await self.server.emit(event, data, room=sid, ignore_queue=True)

    async def _conversation(self, session_id: str) -> conversations.ConversationRef | None:
        """The web session's conversation, if it has one (a look-up: replies stay where they go)."""
        return await self.app[DATABASE].execute(conversations.find_conversation, CHANNEL, session_id, False)

    async def connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        """Notes the client's address (for its rate limit) and Origin in the socket's session."""
        request = environ.get("aiohttp.request")
        if request is not None:
            address = client_address(
                request.remote, request.headers.get("X-Forwarded-For"), self.app[SETTINGS].trusted_proxies
            )
        else:
            address = None
        # The page's Origin: the session token is signed for it (none from non-browser clients).
        await self.server.save_session(sid, {"address": address, "origin": environ.get("HTTP_ORIGIN", "")})

    async def _session_id(self, sid: str) -> str | None:
        session = await self.server.get_session(sid)
        return session.get("session_id")

    async def session_request(self, sid: str, data: Any = None) -> None:
        session = await self.server.get_session(sid)
        origin = session.get("origin", "")
        requested = data.get("session_id") if isinstance(data, dict) else None
        session_id = self.tokens.session_of(requested, origin)
        if session_id is None:
            session_id = uuid.uuid4().hex
            if requested:
                logger.info(
                    "A web session id the gateway did not issue for %r: a new session", origin or "no Origin"
                )
        token = self.tokens.issue(session_id, origin)
        await self.server.save_session(sid, {**session, "session_id": session_id})
        await self.server.enter_room(sid, session_id)
        await self._to_socket(sid, "session_confirm", token)
        await self._to_socket(sid, "channels", {"telegram": self._telegram_bot()})
        await self._join_conversation(sid, session_id)

    def _telegram_bot(self) -> str | None:
        """The Telegram bot a web visitor can move to: this gateway's (its getMe username), or
        TELEGRAM_BOT_USERNAME when Telegram runs in another process; None when Telegram is off."""
        telegram = self.app.get(TELEGRAM)
        return getattr(telegram, "username", None) or self.app[SETTINGS].telegram_bot_username

    async def _join_conversation(self, sid: str, session_id: str) -> None:
        """Joins the conversation's room (agent lines are pushed there) and sends what an
        agent wrote while no socket of this conversation was connected."""
        database = self.app[DATABASE]
        try:
            conversation = await self._conversation(session_id)
            if conversation is None:
                return
            for room in self.server.rooms(sid):
                if room.startswith("conversation:") and room != conversation_room(conversation.id):
                    await self.server.leave_room(sid, room)
            await self.server.enter_room(sid, conversation_room(conversation.id))
            waiting = await database.run(conversations.undelivered, conversation.id)
        except SQLAlchemyError as error:
            logger.error("Could not read the lines waiting for web session %s: %s", session_id, error)
            return
        for message in waiting:
            await self._to_socket(
                sid, "bot_uttered", bot_uttered({"text": message.text, **(message.payload or {})})
            )
        await self._to_socket(sid, "helpdesk_status", {"mode": conversation.mode, "agent": None})

    async def user_uttered(self, sid: str, data: Any = None) -> None:
        session = await self.server.get_session(sid)
        session_id = session.get("session_id")
        if session_id is None:
            await self._to_socket(sid, "error", {"message": "send session_request first"})
            return
        message = data.get("message") if isinstance(data, dict) else None
        metadata = data.get("customData") if isinstance(data, dict) else None
        limit = self.app[SETTINGS].max_message_chars
        if not isinstance(message, str) or not message.strip():
            await self._to_socket(sid, "error", {"message": "'message' must be a non-empty string"})
            return
        if len(message) > limit or not plain_text(message):
            await self._to_socket(
                sid, "error", {"message": f"the message must be text of at most {limit} characters"}
            )
            return
        incoming = IncomingMessage(
            channel=CHANNEL,
            sender=session_id,
            text=message.strip(),
            metadata=metadata if isinstance(metadata, dict) else {},
            address=session.get("address"),
        )
        await self.server.emit("typing", {"on": True}, room=session_id)
        try:
            replies = await self.app[ROUTER].handle(incoming)
        except HelpdeskUnavailable as error:
            await self.server.emit("typing", {"on": False}, room=session_id)
            await self._to_socket(sid, "error", {"message": f"the helpdesk is unavailable: {error}"})
            return
        except TooManyMessages as error:
            await self.server.emit("typing", {"on": False}, room=session_id)
            notice = {
                "message": refusal_text(self.app[TEXTS], error.refusal),
                "text": incoming.text,
                "retry_after": error.refusal.retry_after_seconds,
            }
            await self._to_socket(sid, "rate_limited", notice)
            return
        for reply in replies:
            await self.server.emit("bot_uttered", bot_uttered(reply), room=session_id)
        # After the replies: a client can take it as "that was all" (the benchmark does).
        await self.server.emit("typing", {"on": False}, room=session_id)
        await self._join_conversation_room_once(sid, session_id)

    async def _join_conversation_room_once(self, sid: str, session_id: str) -> None:
        # The first message created the conversation: pushes for it reach this socket now.
        if not any(room.startswith("conversation:") for room in self.server.rooms(sid)):
            conversation = await self._conversation(session_id)
            if conversation is not None:
                await self.server.enter_room(sid, conversation_room(conversation.id))

    async def link_request(self, sid: str, data: Any = None) -> None:
        session_id = await self._session_id(sid)
        if session_id is None:
            return
        code, _ = await self.app[DATABASE].run(identity.issue_code, CHANNEL, session_id)
        await self._join_conversation_room_once(sid, session_id)
        bot_name = self._telegram_bot()
        url = f"https://t.me/{bot_name}?start={code}" if bot_name else None
        await self._to_socket(
            sid,
            "link_code",
            {
                "code": code,
                "telegram_url": url,
                "telegram_bot": bot_name,
                "expires_in": int(identity.LIFETIME.total_seconds()),
            },
        )

    async def link_claim(self, sid: str, data: Any = None) -> None:
        session = await self.server.get_session(sid)
        session_id = session.get("session_id")
        code = data.get("code") if isinstance(data, dict) else None
        if session_id is None or not isinstance(code, str) or not plain_text(code) or len(code) > 32:
            await self._to_socket(
                sid, "link_result", {"ok": False, "error": "type the code Telegram gave you"}
            )
            return
        try:
            linked = await claim_link_code(self.app, code, CHANNEL, session_id, session.get("address"))
        except (TooManyWrongCodes, identity.LinkError) as error:
            await self._to_socket(sid, "link_result", {"ok": False, "error": str(error)})
            return
        logger.info("Web session %s joined conversation %s", session_id, linked.id)
        for room in list(self.server.rooms(sid)):
            if room.startswith("conversation:"):
                await self.server.leave_room(sid, room)
        await self.server.enter_room(sid, conversation_room(linked.id))
        await self._to_socket(sid, "link_result", {"ok": True})
        await self._to_socket(sid, "helpdesk_status", {"mode": linked.mode, "agent": None})

    # -- Pushes from the helpdesk (bot.delivery) ----------------------------------------------

    async def deliver(self, conversation_id: str, message: dict[str, Any]) -> bool:
        """Emits an agent's line to the conversation's sockets in this process, if any."""
        room = conversation_room(conversation_id)
        if not self._has_members(room):
            return False
        claimed = await self.app[DATABASE].execute(conversations.mark_delivered, message["id"])
        if claimed:
            await self.server.emit(
                "bot_uttered", bot_uttered({"text": message["text"], **(message["payload"] or {})}), room=room
            )
        return claimed

    async def status(self, conversation_id: str, status: dict[str, Any]) -> None:
        room = conversation_room(conversation_id)
        if self._has_members(room):
            await self.server.emit("helpdesk_status", status, room=room, ignore_queue=True)

    def _has_members(self, room: str) -> bool:
        participants = self.server.manager.get_participants("/", room)
        return next(iter(participants), None) is not None
