"""A real SMTP server on loopback (aiosmtpd), whose mail the tests read, as the customer
reads their mailbox."""

from __future__ import annotations

import email
import re
import threading
import time
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

CODE = re.compile(r"^\s+(\d{6})\s*$", re.MULTILINE)


class _Keep:
    def __init__(self, box: Mailbox) -> None:
        self._box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        message = email.message_from_bytes(envelope.content)
        with self._box.lock:
            self._box.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


class Mailbox:
    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[tuple[list[str], Message]] = []
        self.lock = threading.Lock()
        self._controller = Controller(_Keep(self), hostname="127.0.0.1", port=port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def to(self, address: str) -> list[Message]:
        with self.lock:
            return [message for recipients, message in self.messages if address in recipients]

    def wait_for(self, address: str, subject_part: str, after: int = 0, timeout: float = 10.0) -> Message:
        """The first mail to `address` with `subject_part` in its subject, beyond the first
        `after` such mails (so a test gets the new one)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.to(address) if subject_part in (m["Subject"] or "")]
            if len(found) > after:
                return found[after]
            time.sleep(0.05)
        raise AssertionError(f"no mail to {address} about {subject_part!r} within {timeout} s")

    def count(self, address: str, subject_part: str) -> int:
        return sum(subject_part in (m["Subject"] or "") for m in self.to(address))

    def newest_code(self, address: str) -> str:
        """The code in the newest mail to `address` that has one ("" if none came)."""
        for message in reversed(self.to(address)):
            found = CODE.search(message.get_payload(decode=True).decode())
            if found:
                return found.group(1)
        return ""

    def cancel_code(self, address: str, order: str, after: int = 0) -> str:
        """The code in the newest mail asking `address` to confirm cancelling `order`."""
        message = self.wait_for(address, f"cancel order {order}", after)
        found = CODE.search(message.get_payload(decode=True).decode())
        assert found, f"no code in the mail:\n{message}"
        return found.group(1)
