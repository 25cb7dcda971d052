"""Agents, passwords and sessions for the consoles.

Passwords are hashed with argon2id (argon2-cffi's defaults). A login stores a random token's
SHA-256 in `agent_sessions` and gives the browser the token signed with the secret key
(itsdangerous) in an HttpOnly, SameSite=Strict cookie: a forged or altered cookie is refused
before the database is asked, a stolen database row cannot be replayed, and logging out ends
the session on the server. Requests that change state must come from this site's own pages:
their Origin header is checked (cross-site request forgery).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import secrets
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from handoff.models import Agent, AgentSession, utcnow

ROLES = ("agent", "trainer", "admin")
COOKIE = "helpdesk_session"
MIN_PASSWORD_CHARS = 10

_hasher = PasswordHasher()
# Verified against when the email is unknown, so a wrong email takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AgentError(ValueError):
    """An agent could not be created: say what is wrong."""


@dataclass(frozen=True)
class AgentRef:
    id: int
    email: str
    name: str
    role: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "email": self.email, "name": self.name, "role": self.role}


def _ref(agent: Agent) -> AgentRef:
    return AgentRef(agent.id, agent.email, agent.name, agent.role)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create_agent(session: Session, email: str, password: str, role: str, name: str | None = None) -> AgentRef:
    email = normalise_email(email)
    if "@" not in email or len(email) > 320:
        raise AgentError(f"{email!r} is not an email address")
    if role not in ROLES:
        raise AgentError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if len(password) < MIN_PASSWORD_CHARS:
        raise AgentError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    agent = Agent(
        email=email,
        name=(name or email.split("@")[0]).strip()[:200],
        role=role,
        password_hash=_hasher.hash(password),
        active=True,
    )
    try:
        with session.begin_nested():
            session.add(agent)
            session.flush()
    except IntegrityError as error:
        raise AgentError(f"an agent with the email {email} already exists") from error
    return _ref(agent)


@dataclass(frozen=True)
class Credentials:
    """An agent's stored password hash, read in a short transaction of its own: hashing takes
    tens of milliseconds by design, and no database lock may be held meanwhile (on SQLite a
    transaction holds the one writer lock)."""

    agent: AgentRef | None
    password_hash: str


def credentials(session: Session, email: str) -> Credentials:
    agent = session.scalars(sa.select(Agent).where(Agent.email == normalise_email(email))).first()
    if agent is None or not agent.active:
        return Credentials(None, _DUMMY_HASH)  # verified all the same: a wrong email takes as long
    return Credentials(_ref(agent), agent.password_hash)


def verify_password(stored: Credentials, password: str) -> tuple[AgentRef | None, str | None]:
    """The agent if the password is right (no database), and a new hash if argon2's
    parameters changed since this one was made."""
    try:
        _hasher.verify(stored.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None, None
    if stored.agent is None:
        return None, None
    rehashed = _hasher.hash(password) if _hasher.check_needs_rehash(stored.password_hash) else None
    return stored.agent, rehashed


def store_rehash(session: Session, agent: AgentRef, password_hash: str) -> None:
    session.execute(sa.update(Agent).where(Agent.id == agent.id).values(password_hash=password_hash))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


class Sessions:
    """Issues and checks the signed session cookie's value."""

    def __init__(self, secret_key: str, lifetime: dt.timedelta) -> None:
        self._signer = URLSafeSerializer(secret_key, salt="helpdesk-session")
        self.lifetime = lifetime

    def start(self, session: Session, agent: AgentRef) -> str:
        token = secrets.token_urlsafe(32)
        now = utcnow()
        session.add(
            AgentSession(
                token_hash=_digest(token), agent_id=agent.id, created_at=now, expires_at=now + self.lifetime
            )
        )
        return self._signer.dumps(token)

    def token(self, cookie: str | None) -> str | None:
        """The token in a cookie whose signature is ours, else None (no database needed)."""
        if not cookie:
            return None
        try:
            token = self._signer.loads(cookie)
        except BadSignature:
            return None
        return token if isinstance(token, str) else None

    @staticmethod
    def agent(session: Session, token: str) -> AgentRef | None:
        row = session.execute(
            sa.select(Agent)
            .join(AgentSession, AgentSession.agent_id == Agent.id)
            .where(AgentSession.token_hash == _digest(token), AgentSession.expires_at > utcnow())
        ).scalar_one_or_none()
        return _ref(row) if row is not None and row.active else None

    @staticmethod
    def end(session: Session, token: str) -> None:
        session.execute(sa.delete(AgentSession).where(AgentSession.token_hash == _digest(token)))
        # Expired logins of anyone are swept here too; no scheduler needed.
        session.execute(sa.delete(AgentSession).where(AgentSession.expires_at <= utcnow()))


@dataclass(frozen=True)
class BackoffRule:
    free: int  # failures before the first wait
    cap: float  # the longest wait, in seconds


# Logins: five failures of one email from one address before the first wait; twenty of an
# address (many emails tried); fifty of an email from anywhere (a guesser elsewhere).
PAIR, ADDRESS, SUBJECT = (
    BackoffRule(free=5, cap=300),
    BackoffRule(free=20, cap=900),
    BackoffRule(free=50, cap=300),
)


class Backoff:
    """Slows guessing (passwords, link codes) without locking the right answer out.

    Failed attempts are remembered for `window` seconds for the subject (the email, the
    claiming chat) together with the client's address, for the address alone, and for the
    subject alone. Past a key's `free` failures, each attempt waits twice as long as the one
    before, from that key's last failure (1 s, 2 s, 4 s ... up to its `cap`): an agent who
    mistyped waits seconds and then gets in, a guesser gets a few tries an hour, and a
    guesser elsewhere slows the agent's own logins only after many failures (the subject's
    rule is looser than the pair's). Attempts under way count at once, so a burst of parallel
    guesses counts in full. Kept in the process's memory: a restart forgets it."""

    def __init__(
        self,
        pair: BackoffRule = PAIR,
        address: BackoffRule = ADDRESS,
        subject: BackoffRule = SUBJECT,
        window: float = 60 * 60,
        keys: int = 100_000,
    ) -> None:
        self.rules = {"pair": pair, "address": address, "subject": subject}
        self.window, self.keys = window, keys
        self._failures: dict[str, deque[float]] = {}
        self._in_flight: dict[str, int] = defaultdict(int)

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.get(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def _keys(self, subject: str, address: str | None) -> list[tuple[str, BackoffRule]]:
        subject = normalise_email(subject)
        if not address:  # no address known (a Telegram chat): the subject gets the pair's rule
            return [(f"subject:{subject}", self.rules["pair"])]
        return [
            (f"subject:{subject}", self.rules["subject"]),
            (f"pair:{subject}|{address}", self.rules["pair"]),
            (f"address:{address}", self.rules["address"]),
        ]

    def begin(self, subject: str, address: str | None, now: float | None = None) -> float:
        """0 and the attempt counted as under way; or the seconds to wait, nothing counted."""
        now = time.monotonic() if now is None else now
        wait = 0.0
        for key, rule in self._keys(subject, address):
            failures = self._recent(key, now)
            over = len(failures) + self._in_flight[key] - rule.free
            if over >= 0:
                allowed_at = (failures[-1] if failures else now) + min(rule.cap, 2.0**over)
                wait = max(wait, allowed_at - now)
        if wait > 0:
            return wait
        for key, _ in self._keys(subject, address):
            self._in_flight[key] += 1
        return 0.0

    def end(self, subject: str, address: str | None, succeeded: bool, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for key, _ in self._keys(subject, address):
            self._in_flight[key] -= 1
            if self._in_flight[key] <= 0:
                del self._in_flight[key]
            failures = self._recent(key, now)
            if succeeded and not key.startswith("address:"):
                failures.clear()
            elif not succeeded:
                failures.append(now)
            if failures:
                self._failures.pop(key, None)  # re-inserted last: the dict stays oldest-first
                self._failures[key] = failures
            else:
                self._failures.pop(key, None)
        while len(self._failures) > self.keys:  # bounded memory, whatever is thrown at it
            del self._failures[next(iter(self._failures))]


def wait_words(seconds: float) -> str:
    """'3 seconds', '2 minutes': how long a throttled client waits, for its error message."""
    if seconds < 90:
        whole = max(1, math.ceil(seconds))
        return f"{whole} second{'s' if whole != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minutes"
