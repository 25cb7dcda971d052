"""The shop's signed-in customer (bot/shop_identity.py): only the shop's own HMAC of the email
vouches for it, the hash never reaches Rasa, and a client cannot set `identity` itself."""

from __future__ import annotations

from bot.shop_identity import identifier_hash, verified_identity, with_identity

SECRET = "shop-secret"


def signed(email: str, secret: str = SECRET) -> dict[str, str]:
    return {"identifier": email, "identifier_hash": identifier_hash(secret, email)}


def test_the_shops_signature_vouches_for_the_email() -> None:
    assert verified_identity(SECRET, signed("Jane.Doe@example.com")) == "jane.doe@example.com"
    hashed = signed("jane.doe@example.com")["identifier_hash"]
    assert verified_identity(
        SECRET, {"identifier": "jane.doe@example.com", "identifier_hash": hashed.upper()}
    )


def test_anything_else_vouches_for_nobody() -> None:
    jane = signed("jane.doe@example.com")
    assert verified_identity(None, jane) is None  # the gateway has no secret: nobody is signed in
    assert verified_identity(SECRET, signed("jane.doe@example.com", "another shop")) is None
    assert verified_identity(SECRET, {**jane, "identifier": "li.wei@example.org"}) is None
    assert verified_identity(SECRET, {"identifier": "jane.doe@example.com"}) is None
    assert verified_identity(SECRET, {**jane, "identifier_hash": ["not", "text"]}) is None
    assert verified_identity(SECRET, signed("not an email")) is None


def test_rasa_gets_the_verified_email_and_not_the_hash() -> None:
    metadata = with_identity(SECRET, {**signed("jane.doe@example.com"), "page": "/orders"})
    assert metadata == {
        "identifier": "jane.doe@example.com",
        "page": "/orders",
        "identity": "jane.doe@example.com",
    }
    forged = with_identity(SECRET, {"identity": "jane.doe@example.com"})
    assert forged == {"identity": None}
