"""Whole conversations through the running stack: scripted customers with a goal each.

`benchmarks/data/conversations.yml` holds the scripts, written apart from the training data
and the tests. Each customer talks to the gateway's REST channel as a new sender, types or
presses the buttons the bot showed, and every turn's replies are checked (facts said, the
article answered, an RMA created, a ticket opened with its priority, an honest decline).
Between conversations the demo shop's orders and returns are put back as seeded, so a
cancellation or a return in one script does not change the next.

Figures, overall and by goal:
- task success: every check held and the goal's turn was reached;
- turns to success: the customer's turns up to the goal, for the conversations that succeeded;
- false handoffs: a ticket the script neither asked for nor needed;
- forgotten facts: the bot asked again for an order number or an email it had been told.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
import yaml
from tqdm import tqdm

from actions.kb import load_articles
from benchmarks.cli import RESULTS

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "conversations.yml"
SEEDS = ROOT / "seeds" / "demo_shop.yml"
# The shop's tables a conversation can change (a cancellation, a return and its history).
SHOP_TABLES = ("shop_orders", "shop_returns", "shop_return_events")

ORDER_NUMBER = re.compile(r"(?<!\d)\d{6}(?!\d)")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
RMA = re.compile(r"\bRMA-\d+\b", re.IGNORECASE)
# The bot asking for something (its questions in domain.yml, in their plain words).
ASKS = {
    "order_id": re.compile(r"what's your order number|or the order number\?|which order", re.IGNORECASE),
    "email": re.compile(r"email address you used", re.IGNORECASE),
}
ASKED_ORDER = re.compile(r"for order (\d{6})")


@dataclass
class Turn:
    index: int
    sent: str
    replies: list[dict[str, Any]]
    tickets: list[dict[str, Any]]
    unresolved: int
    failures: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    script: dict[str, Any]
    turns: list[Turn] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)

    @property
    def goal(self) -> str:
        return str(self.script["goal"])

    @property
    def done_turn(self) -> int:
        return next(i for i, turn in enumerate(self.script["turns"], 1) if turn.get("done"))

    @property
    def success(self) -> bool:
        return len(self.turns) >= self.done_turn and not any(turn.failures for turn in self.turns)

    @property
    def handoff_expected(self) -> bool:
        return self.goal == "handover" or any(
            (turn.get("expect") or {}).get("handoff") is True for turn in self.script["turns"]
        )

    @property
    def false_handoff(self) -> bool:
        return not self.handoff_expected and any(turn.tickets for turn in self.turns)


def reply_text(replies: list[dict[str, Any]]) -> str:
    return "\n".join(reply.get("text") or "" for reply in replies)


def buttons(replies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [button for reply in replies for button in reply.get("buttons") or []]


def normalise(text: str) -> str:
    return " ".join(text.split()).lower()


class Customer:
    """One scripted customer on the gateway's REST channel, and what the helpdesk recorded."""

    def __init__(
        self, gateway_url: str, helpdesk: sa.engine.Engine, headers: dict[str, str], mailbox: Any = None
    ) -> None:
        self.gateway_url = gateway_url
        self.headers = headers  # the REST channel's secret
        self.helpdesk = helpdesk
        self.mailbox = mailbox  # the stack's SMTP server: the codes the shop mails
        self.sender = f"conv-{uuid.uuid4().hex[:12]}"

    def say(self, text: str) -> list[dict[str, Any]]:
        response = requests.post(
            f"{self.gateway_url}/webhooks/rest/webhook",
            json={"sender": self.sender, "message": text},
            headers=self.headers,
            timeout=120,
        )
        response.raise_for_status()
        return list(response.json())

    def tickets(self) -> list[dict[str, Any]]:
        query = sa.text(
            "SELECT t.id, t.reason, t.priority FROM tickets t "
            "JOIN conversations c ON c.id = t.conversation_id "
            "JOIN channel_identities i ON i.customer_id = c.customer_id "
            "WHERE i.channel = 'rest' AND i.external_id = :sender ORDER BY t.id"
        )
        with self.helpdesk.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query, {"sender": self.sender})]

    def unresolved(self) -> int:
        query = sa.text(
            "SELECT count(*) FROM unresolved_messages u "
            "JOIN conversations c ON c.id = u.conversation_id "
            "JOIN channel_identities i ON i.customer_id = c.customer_id "
            "WHERE i.channel = 'rest' AND i.external_id = :sender"
        )
        with self.helpdesk.connect() as conn:
            return int(conn.execute(query, {"sender": self.sender}).scalar_one())


class Checker:
    """The per-turn checks of the scripts, and the facts the customer has told so far."""

    def __init__(self, articles: dict[str, str], owners: dict[str, str]) -> None:
        self.articles = articles
        self.owners = owners

    def check(self, expect: dict[str, Any], turn: Turn, before: Turn | None) -> list[str]:
        text = reply_text(turn.replies)
        said = normalise(text)
        failures = []
        for wanted in expect.get("says") or []:
            if normalise(str(wanted)) not in said:
                failures.append(f"did not say {wanted!r}")
        anyof = expect.get("says_any") or []
        if anyof and not any(normalise(str(wanted)) in said for wanted in anyof):
            failures.append(f"said none of {anyof!r}")
        for unwanted in expect.get("not_says") or []:
            if normalise(str(unwanted)) in said:
                failures.append(f"said {unwanted!r}")
        if "article" in expect and not self.answered_with(expect["article"], said):
            failures.append(f"did not answer with the article {expect['article']}")
        if expect.get("rma") and not RMA.search(text):
            failures.append("no RMA number")
        opened = turn.tickets[len(before.tickets) if before else 0 :]
        if expect.get("handoff") is True and not opened:
            failures.append("no ticket opened")
        if expect.get("handoff") is False and opened:
            failures.append(f"a ticket opened ({opened[0]['reason']})")
        if "priority" in expect and opened and opened[0]["priority"] != expect["priority"]:
            failures.append(f"priority {opened[0]['priority']}, expected {expect['priority']}")
        if expect.get("declined"):
            logged = turn.unresolved > (before.unresolved if before else 0)
            answered = [article for article, body in self.articles.items() if body[:80] in said]
            if not logged or answered:
                failures.append(
                    f"not declined (logged as unresolved: {logged}, answered with: {answered or 'none'})"
                )
        return failures

    def answered_with(self, article_id: str, said: str) -> bool:
        body = self.articles.get(article_id)
        return body is not None and body[:80] in said

    def forgotten(self, turns: list[Turn], allowed: set[str]) -> list[str]:
        """What the last turn's replies asked for though the customer had said it already."""
        last = turns[-1]
        text = reply_text(last.replies)
        told_orders = {number for turn in turns[:-1] for number in ORDER_NUMBER.findall(turn.sent)}
        told_emails = {email.lower() for turn in turns[:-1] for email in EMAIL.findall(turn.sent)}
        current_orders = set(ORDER_NUMBER.findall(last.sent))
        found = []
        asks_order = "order_id" not in allowed and ASKS["order_id"].search(text)
        if asks_order and len(told_orders) == 1 and not current_orders:
            found.append(f"order number {next(iter(told_orders))}")
        if "email" not in allowed and ASKS["email"].search(text):
            asked = ASKED_ORDER.search(text)
            orders = {asked.group(1)} if asked else (current_orders or told_orders)
            known = [order for order in orders if self.owners.get(order) in told_emails]
            if known and (asked or len(orders) == 1):
                found.append(f"email for order {known[0]}")
        return found


def load_scripts(path: Path = DATA) -> list[dict[str, Any]]:
    scripts = yaml.safe_load(path.read_text(encoding="utf-8"))["conversations"]
    ids = Counter(script["id"] for script in scripts)
    problems = [f"{name}: id used {count} times" for name, count in ids.items() if count > 1]
    for script in scripts:
        done = [turn for turn in script["turns"] if turn.get("done")]
        if len(done) != 1:
            problems.append(f"{script['id']}: {len(done)} turns marked done")
        for turn in script["turns"]:
            if sum(key in turn for key in ("user", "press", "code")) != 1:
                problems.append(f"{script['id']}: a turn needs exactly one of user, press and code")
    if problems:
        raise SystemExit("conversations.yml: " + "; ".join(problems))
    return scripts


def owners_from_seed() -> dict[str, str]:
    seed = yaml.safe_load(SEEDS.read_text(encoding="utf-8"))
    return {str(order["number"]): str(order["customer"]).lower() for order in seed["orders"]}


class ShopState:
    """The shop's changeable tables as seeded, put back after every conversation."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url)
        self.tables: list[sa.Table] = []
        self.rows: dict[str, list[dict[str, Any]]] = {}

    def snapshot(self) -> None:
        meta = sa.MetaData()
        with self.engine.connect() as conn:
            self.tables = [sa.Table(name, meta, autoload_with=conn) for name in SHOP_TABLES]
            self.rows = {
                table.name: [dict(row._mapping) for row in conn.execute(table.select())]
                for table in self.tables
            }

    def restore(self) -> None:
        with self.engine.begin() as conn:
            for table in reversed(self.tables):
                conn.execute(table.delete())
            for table in self.tables:
                if self.rows[table.name]:
                    conn.execute(table.insert(), self.rows[table.name])


def run_script(script: dict[str, Any], customer: Customer, checker: Checker) -> Outcome:
    outcome = Outcome(script)
    previous: list[dict[str, Any]] = []
    for index, step in enumerate(script["turns"], 1):
        failures = []
        if "press" in step:
            wanted = normalise(str(step["press"]))
            button = next((b for b in buttons(previous) if wanted in normalise(b.get("title") or "")), None)
            if button is None:
                failures.append(f"no button {step['press']!r} to press")
                sent = str(step["press"])
            else:
                sent = str(button["payload"])
        elif "code" in step:  # the customer reads the code in their mailbox and types it
            sent = customer.mailbox.newest_code(str(step["code"])) if customer.mailbox else ""
        else:
            sent = str(step["user"])
        replies = customer.say(sent)
        turn = Turn(index, sent, replies, customer.tickets(), customer.unresolved(), failures)
        before = outcome.turns[-1] if outcome.turns else None
        turn.failures += checker.check(step.get("expect") or {}, turn, before)
        outcome.turns.append(turn)
        allowed = set(step.get("allow_ask") or [])
        outcome.forgotten += [
            f"turn {index}: asked again for the {fact}" for fact in checker.forgotten(outcome.turns, allowed)
        ]
        previous = replies
    return outcome


def summarise(outcomes: list[Outcome]) -> dict[str, Any]:
    def figures(group: list[Outcome]) -> dict[str, Any]:
        succeeded = [outcome for outcome in group if outcome.success]
        turns = [outcome.done_turn for outcome in succeeded]
        return {
            "conversations": len(group),
            "task_success": len(succeeded) / len(group),
            "turns_to_success": statistics.mean(turns) if turns else None,
            "false_handoffs": sum(outcome.false_handoff for outcome in group) / len(group),
            "forgotten_facts": sum(len(outcome.forgotten) for outcome in group),
        }

    by_goal: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_goal[outcome.goal].append(outcome)
    failures = [
        {
            "id": outcome.script["id"],
            "goal": outcome.goal,
            "problems": [
                f"turn {turn.index}: {problem}" for turn in outcome.turns for problem in turn.failures
            ]
            + outcome.forgotten
            + (["false handoff"] if outcome.false_handoff else []),
            "transcript": [
                {"customer": turn.sent, "bot": reply_text(turn.replies), "tickets": len(turn.tickets)}
                for turn in outcome.turns
            ],
        }
        for outcome in outcomes
        if not outcome.success or outcome.forgotten or outcome.false_handoff
    ]
    return {
        "overall": figures(outcomes),
        "by_goal": {goal: figures(group) for goal, group in sorted(by_goal.items())},
        "misses": failures,
    }


def report(results: dict[str, Any]) -> str:
    def row(name: str, figures: dict[str, Any]) -> str:
        turns = figures["turns_to_success"]
        return (
            f"{name:<18} {figures['conversations']:>5} {100 * figures['task_success']:>8.1f}% "
            f"{turns if turns is None else round(turns, 2)!s:>7} {100 * figures['false_handoffs']:>9.1f}% "
            f"{figures['forgotten_facts']:>10}"
        )

    lines = [
        "Whole conversations (benchmarks/data/conversations.yml) through the gateway",
        f"{'goal':<18} {'n':>5} {'success':>9} {'turns':>7} {'false hoff':>10} {'forgotten':>10}",
    ]
    lines += [row(goal, figures) for goal, figures in results["by_goal"].items()]
    lines.append(row("all", results["overall"]))
    lines.append("Targets: success >= 95%, false handoffs <= 2%, forgotten facts 0.")
    return "\n".join(lines)


def miss_line(miss: dict[str, Any]) -> str:
    lines = [f"{miss['id']} ({miss['goal']}): " + "; ".join(miss["problems"])]
    for turn in miss["transcript"]:
        lines.append(f"      > {turn['customer']}")
        lines += [f"        {line}" for line in turn["bot"].splitlines() if line.strip()][:6]
    return "\n".join(lines)


def measure(stack: Any, scripts: list[dict[str, Any]]) -> dict[str, Any]:
    helpdesk = sa.create_engine(f"sqlite:///{stack.helpdesk_db}")
    articles = {
        article.id: normalise(article.body) for article in load_articles(stack.knowledge_base / "articles")
    }
    checker = Checker(articles, owners_from_seed())
    # The first order question seeds the shop and the first policy question waits for the index.
    warm = Customer(stack.gateway_url, helpdesk, stack.rest_headers)
    warm.say("where is order 100234?")
    warm.say("how long do I have to return something?")
    shop = ShopState(f"sqlite:///{stack.shop_db}")
    shop.snapshot()
    outcomes = []
    for script in tqdm(scripts, desc="conversations", unit="conv"):
        outcomes.append(
            run_script(
                script, Customer(stack.gateway_url, helpdesk, stack.rest_headers, stack.mailbox), checker
            )
        )
        shop.restore()
    return summarise(outcomes)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--show-failures", action="store_true", help="each failed conversation, with its transcript"
    )
    parser.add_argument("--only", help="run only the conversations whose id contains this text")
    args = parser.parse_args(argv)
    scripts = [script for script in load_scripts() if not args.only or args.only in script["id"]]

    from tests.support.stack import SHARED_DEMO_ORDERS, Stack

    with tempfile.TemporaryDirectory() as workdir:
        stack = Stack(Path(workdir), SHARED_DEMO_ORDERS)
        try:
            stack.start()
            stack.wait_healthy()
            results = measure(stack, scripts)
        finally:
            stack.stop_all()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "conversations.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(report(results))
    if args.show_failures:
        for miss in results["misses"]:
            print("  " + miss_line(miss))
    return results


if __name__ == "__main__":
    main()
