"""A customer the shop has already signed in, vouched for by the shop.

Like Chatwoot's `identifier_hash`: the shop's back end computes HMAC-SHA256 of the customer's
email (the one on their orders) with a secret it shares with this gateway,
SHOP_IDENTITY_SECRET, and its page passes both to the widget (`data-identifier`,
`data-identifier-hash`), which sends them with every message as `customData`; the REST
channel takes them in `metadata`. The gateway compares the hash in constant time and passes
only the verified email on, as `identity` in the message's metadata (the hash itself is not
kept). The action server then shows that customer's orders without asking for their email.

Without the secret, or with a hash that does not match, `identity` is None: the customer
proves each order with its email, as anyone else.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

IDENTIFIER = "identifier"
IDENTIFIER_HASH = "identifier_hash"
IDENTITY = "identity"  # set by the gateway only: whatever a client sends under it is replaced
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{1,60}$")


def identifier_hash(secret: str, identifier: str) -> str:
    """What the shop's back end computes for its signed-in customer (hex)."""
    return hmac.new(secret.encode(), identifier.encode(), hashlib.sha256).hexdigest()


def verified_identity(secret: str | None, metadata: dict[str, Any]) -> str | None:
    """The email `metadata` vouches for, if its hash is the shop's; None otherwise."""
    identifier, signature = metadata.get(IDENTIFIER), metadata.get(IDENTIFIER_HASH)
    if not secret or not isinstance(identifier, str) or not isinstance(signature, str):
        return None
    if not EMAIL.match(identifier) or not hmac.compare_digest(
        identifier_hash(secret, identifier), signature.strip().lower()
    ):
        return None
    return identifier.strip().lower()


def with_identity(secret: str | None, metadata: dict[str, Any]) -> dict[str, Any]:
    """`metadata` as Rasa gets it: the verified email as `identity`, no hash."""
    kept = {key: value for key, value in metadata.items() if key != IDENTIFIER_HASH}
    return {**kept, IDENTITY: verified_identity(secret, metadata)}
