"""One customer across channels: one-time link codes.

A code is issued on one channel (the widget shows it as a Telegram deep link; Telegram's
/link shows it to type in the widget) and claimed on the other. After the claim, the
claiming channel's identity belongs to the issuing customer, so both channels find the same
conversation, which is also the Rasa conversation: slots, an open form, proven ownership,
the ticket and the transcript carry on. Codes are random (8 characters from 31, about 40
bits), stored as SHA-256, expire after 10 minutes and work once; failed claims are limited
per claiming identity (bot/channels/linking.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from handoff import conversations
from handoff.models import ChannelIdentity, LinkCode, utcnow

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L: easy to read out and type
CODE_LENGTH = 8
LIFETIME = dt.timedelta(minutes=10)


class LinkError(ValueError):
    """A code that cannot be used: say why, without telling a guesser which codes exist."""


def normalise_code(typed: str) -> str:
    return re.sub(r"[\s-]", "", typed).upper()


def _digest(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode("ascii", "replace")).hexdigest()


def issue_code(session: Session, channel: str, external_id: str) -> tuple[str, dt.datetime]:
    """A new code for whoever writes as `external_id` on `channel` (created if new)."""
    conversation = conversations.resolve_conversation(session, channel, external_id)
    code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    expires = utcnow() + LIFETIME
    session.add(
        LinkCode(
            code_hash=_digest(code),
            customer_id=conversation.customer_id,
            issued_on=channel,
            created_at=utcnow(),
            expires_at=expires,
        )
    )
    session.flush()
    return code, expires


def claim_code(session: Session, code: str, channel: str, external_id: str) -> conversations.ConversationRef:
    """Joins `external_id` on `channel` to the customer who was shown `code`; returns the
    conversation it continues. Raises LinkError for a wrong, used or expired code."""
    row = session.scalars(
        sa.select(LinkCode).where(LinkCode.code_hash == _digest(code)).with_for_update()
    ).first()
    now = utcnow()
    if row is None:
        raise LinkError("that code is not valid: check it, or ask for a new one")
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=dt.timezone.utc)
    if row.used_at is not None or expires <= now:
        raise LinkError("that code has expired or was already used: ask for a new one")
    used = session.execute(
        sa.update(LinkCode)
        .where(LinkCode.id == row.id, LinkCode.used_at.is_(None))
        .values(used_at=now, used_on=channel)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not used:
        raise LinkError("that code has expired or was already used: ask for a new one")
    identity = session.scalars(
        sa.select(ChannelIdentity).where(
            ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id
        )
    ).first()
    if identity is None:
        try:
            with session.begin_nested():
                session.add(
                    ChannelIdentity(channel=channel, external_id=external_id, customer_id=row.customer_id)
                )
                session.flush()
        except IntegrityError:  # its first message arrived meanwhile: move that one
            identity = session.scalars(
                sa.select(ChannelIdentity).where(
                    ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id
                )
            ).one()
    if identity is not None and identity.customer_id != row.customer_id:
        identity.customer_id = row.customer_id
    session.flush()
    conversation = conversations.find_conversation(session, channel, external_id)
    assert conversation is not None  # the issuing customer has one: issue_code made sure
    return conversation
