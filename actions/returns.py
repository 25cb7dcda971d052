"""Returns: the return form, its submission, and return and refund status.

`return_form` collects the order (and proof that it is the customer's, as for order
status), the items, the reason, refund or exchange, and pickup or drop-off. The policy in
knowledge_base/return_policy.yml decides as soon as it can (actions/return_rules.py): an
item that cannot be returned is explained when it is chosen, not after five questions.
A problem report (damaged, wrong or missing item) runs the same form in its `problem`
flow: replacement or refund, no fee, within the report window; otherwise a person.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import return_rules
from actions.backend import get_shop
from actions.dates import add_business_days, format_day
from actions.escalation import escalation_details, hand_over, problem_kind
from actions.faq import knowledge_service, offer_report
from actions.helpdesk import intent_of
from actions.kb import ReturnPolicy
from actions.orders import (
    RETURN_SLOTS,
    OrderOwnershipValidation,
    attempts,
    explain_failure,
    normalise_order_number,
    owned_order,
    proven_order,
    reset_events,
    status_response,
)
from actions.shop.base import NewReturn, Order, OrderItem, ReturnRequest

VOCABULARY_FILE = Path(__file__).with_name("returns.yml")

# Messages whose words may answer the form's questions. Anything else (a policy question,
# an order status question, small talk) is a digression: its words never fill a slot, so
# the form lets the digression's own rule answer it. A message NLU is unsure of may still
# be an answer ("pinches at the toes"): it is read, by meaning if need be.
ANSWER_INTENTS = frozenset(
    {"inform", "request_return", "report_problem", "refund_status", "return_status", "affirm", "nlu_fallback"}
)
# The first message of a return or a problem report may already say why.
OPENERS = frozenset({"request_return", "report_problem"})
# A message that asks something: a question mark, or the words a question opens with.
QUESTION = re.compile(
    r"\?|^\s*(how|what|when|where|which|who|why|can|could|do|does|is|are|will|should|would)\b", re.IGNORECASE
)
STOPWORDS = frozenset(
    "the a an my i it its it's this that these those just only please pls one and of from in to want "
    "would like".split()
)


# --- vocabulary ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    phrases: tuple[str, ...]
    examples: tuple[str, ...] = ()  # whole answers, anchors for reading by meaning


@dataclass(frozen=True)
class Vocabulary:
    reasons: dict[str, Choice]
    reason_buttons: dict[str, tuple[str, ...]]
    resolutions: dict[str, Choice]
    methods: dict[str, Choice]
    all_items: tuple[str, ...]
    meaning_threshold: float


def _choices(data: dict[str, Any]) -> dict[str, Choice]:
    return {
        value: Choice(
            value,
            str(entry["label"]),
            tuple(str(p).lower() for p in entry["phrases"]),
            tuple(str(e) for e in entry.get("examples", ())),
        )
        for value, entry in data.items()
    }


@functools.lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    data = yaml.safe_load(VOCABULARY_FILE.read_text(encoding="utf-8"))
    return Vocabulary(
        reasons=_choices(data["reasons"]),
        reason_buttons={flow: tuple(values) for flow, values in data["reason_buttons"].items()},
        resolutions=_choices(data["resolutions"]),
        methods=_choices(data["methods"]),
        all_items=tuple(str(p).lower() for p in data["all_items"]),
        meaning_threshold=float(data["meaning_threshold"]),
    )


def _normalise(text: str) -> str:
    return " ".join(text.lower().replace("’", "'").split())


# Words that turn a choice down when they come shortly before it: "no exchange, a refund".
NEGATORS = frozenset({"no", "not", "don't", "dont", "never", "without", "nor"})
NEGATION_WINDOW = 4  # words before the phrase


def _hits(text: str, choices: dict[str, Choice]) -> tuple[list[tuple[int, str]], set[str]]:
    """Phrases found in `text`, as (length, value), and the values named only to be turned down."""
    found, declined = [], set()
    for choice in choices.values():
        for phrase in choice.phrases:
            for match in re.finditer(rf"(?<![\w']){re.escape(phrase)}(?![\w'])", text):
                # Only the same clause counts: in "no exchange thanks, refund" the "no"
                # turns the exchange down, not the refund.
                clause = re.split(r"[,.;:!?]|\bbut\b|\bjust\b", text[: match.start()])[-1]
                if NEGATORS & set(clause.split()[-NEGATION_WINDOW:]):
                    declined.add(choice.value)
                else:
                    found.append((len(phrase), choice.value))
    return found, declined - {value for _, value in found}


def _lexical(text: str, choices: dict[str, Choice]) -> tuple[str | None, set[str]]:
    """The value `text` names exactly or by its longest phrase (None if neither), leaving
    out phrases that are turned down ("no exchange thanks, refund"); and the values turned
    down."""
    normalised = _normalise(text)
    if normalised in choices:
        return normalised, set()
    found, declined = _hits(normalised, choices)
    return (max(found)[1] if found else None), declined


def match_choice(text: str, choices: dict[str, Choice]) -> str | None:
    """The value whose phrase is the longest one in `text` (or that `text` names exactly)."""
    return _lexical(text, choices)[0]


@dataclass(frozen=True)
class Anchors:
    values: tuple[str, ...]
    vectors: Any  # one unit-length row per label, phrase and example


@functools.lru_cache(maxsize=8)
def _anchors(choices: tuple[Choice, ...]) -> Anchors:
    from embeddings.encoder import get_encoder

    values, texts = [], []
    for choice in choices:
        for text in (choice.label.lower(), *choice.phrases, *choice.examples):
            values.append(choice.value)
            texts.append(text)
    vectors = get_encoder().encode(texts)
    return Anchors(tuple(values), vectors / (np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-9))


def nearest_choice(
    text: str, choices: dict[str, Choice], threshold: float, exclude: Iterable[str] = ()
) -> str | None:
    """The value of the anchor (label, phrase or example answer) nearest in meaning (cosine
    of sentence embeddings), when it is near enough: "way too snug around the shoulders" is
    a fit problem though no phrase is in it. Blocking (it embeds the text): call it in a
    thread."""
    from embeddings.encoder import get_encoder

    anchors = _anchors(tuple(choices.values()))
    query = get_encoder().encode([text])[0]
    similarity = anchors.vectors @ (query / (np.linalg.norm(query) + 1e-9))
    excluded = set(exclude)
    for index in np.argsort(-similarity):
        if similarity[index] < threshold:
            return None
        if anchors.values[index] not in excluded:
            return anchors.values[index]
    return None


def read_choice(text: str, choices: dict[str, Choice], threshold: float | None = None) -> str | None:
    """A typed answer to a button question: the vocabulary's phrases, then meaning (never a
    choice the answer turns down). `threshold` defaults to the vocabulary's."""
    value, declined = _lexical(text, choices)
    if value:
        return value
    limit = vocabulary().meaning_threshold if threshold is None else threshold
    return nearest_choice(text, choices, limit, exclude=declined)


def _words(text: str) -> set[str]:
    return {word.rstrip("s") for word in re.findall(r"[a-z0-9$]+", text.lower()) if word not in STOPWORDS}


# Words that may stand around "both" or "all of them" in an answer that means every item.
FILLER = frozenset(
    "please pls thanks thank you ok okay i want to return send back id i'd like would the just".split()
)


def _means_every_item(text: str) -> bool:
    """ "both", "all of them please": the whole answer names every item, and nothing else
    ("not all of them, just the socks" does not)."""
    words = [word for word in re.findall(r"[a-z']+", text) if word not in FILLER]
    return " ".join(words) in vocabulary().all_items


def match_items(order: Order, mentions: Iterable[str]) -> list[OrderItem]:
    """The order's items the customer named: exactly, by their words ("the socks": the item
    sharing the most words with each part of the answer, none if two share as many), or
    every item ("both")."""
    chosen: list[OrderItem] = []
    for mention in mentions:
        text = _normalise(str(mention))
        exact = [item for item in order.items if item.name.lower() == text]
        if exact:
            chosen += [item for item in exact if item not in chosen]
            continue
        if _means_every_item(text):
            return list(order.items)
        for part in re.split(r",|&|\band\b|\bplus\b", text):
            words = _words(part)
            overlap = {item: len(words & _words(item.name)) for item in order.items}
            best = max(overlap.values(), default=0)
            named = [item for item, count in overlap.items() if count == best]
            if best and len(named) == 1 and named[0] not in chosen:
                chosen.append(named[0])
    return chosen


def items_named(order: Order, names: Iterable[str]) -> list[OrderItem]:
    """The items whose exact names the form stored."""
    wanted = set(names)
    return [item for item in order.items if item.name in wanted]


# --- slots -------------------------------------------------------------------------------------


def cleared_return_slots(*, keep_reason: bool = False) -> dict[str, Any]:
    return {slot: None for slot in RETURN_SLOTS if not (keep_reason and slot == "return_reason")}


async def current_policy() -> ReturnPolicy:
    """The return policy the knowledge base serves now (edits apply without a restart)."""
    index = await asyncio.to_thread(knowledge_service().index)
    return index.knowledge_base.return_policy


def today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def chosen_items(order: Order, tracker: Tracker) -> list[OrderItem]:
    """The items the form has settled on (their exact names are in `return_items`)."""
    return items_named(order, tracker.get_slot("return_items") or [])


def flow_of(tracker: Tracker) -> str:
    return tracker.get_slot("return_flow") or "return"


def _entity_values(tracker: Tracker, entity: str) -> list[str]:
    return [str(value) for value in tracker.get_latest_entity_values(entity)]


def _answers(tracker: Tracker) -> bool:
    return intent_of(tracker.latest_message) in ANSWER_INTENTS


def _no_other_meaning(tracker: Tracker) -> bool:
    """The model found no request of its own in the message: an answer, or off-topic."""
    return _answers(tracker) or intent_of(tracker.latest_message) == "out_of_scope"


def _may_read_text(tracker: Tracker, slot: str) -> bool:
    """A typed answer fills `slot` when the form asked for it, or when the customer's first
    message already said it; never from a digression such as a policy question."""
    if not _answers(tracker):
        return False
    return tracker.get_slot("requested_slot") == slot or intent_of(tracker.latest_message) in OPENERS


async def reason_in(values: Sequence[str], by_meaning: bool) -> str | None:
    """The return reason the customer's words name: the vocabulary's phrases in any of them;
    with `by_meaning` (a problem report, which says what went wrong in its own words: "the
    sweater has a big hole in it") by meaning too, so the question is not asked again."""
    for value in values:
        reason = match_choice(value, vocabulary().reasons)
        if reason:
            return reason
    if values and by_meaning:
        return await asyncio.to_thread(read_choice, values[-1], vocabulary().reasons)
    return None


# --- the form ----------------------------------------------------------------------------------


class ValidateReturnForm(OrderOwnershipValidation):
    def name(self) -> str:
        return "validate_return_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        slots = await super().required_slots(domain_slots, dispatcher, tracker, domain)
        if not slots or tracker.get_slot("return_blocked"):
            return []  # the submit action explains, offers a person or hands over
        if flow_of(tracker) == "problem":
            # A problem report says what went wrong before which item: it decides the rules.
            slots = [
                "order_id",
                "customer_email",
                "return_reason",
                "return_items",
                "return_resolution",
                "return_method",
            ]
        if tracker.get_slot("return_reason") == "missing":
            slots = [slot for slot in slots if slot != "return_method"]  # nothing to send back
        if tracker.get_slot("return_flag"):  # a question the policy needs answered (opened?)
            # A new list: the one passed in is the domain's own, which rasa_sdk compares with.
            at = slots.index("return_reason") + 1
            slots = [*slots[:at], "return_flag_answer", *slots[at:]]
        return slots

    # -- extraction --

    async def extract_return_items(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        mentions = _entity_values(tracker, "product") if _answers(tracker) else []
        text = (tracker.latest_message.get("text") or "").strip()
        if (
            not mentions
            and tracker.get_slot("requested_slot") == "return_items"
            and _may_read_text(tracker, "return_items")
        ):
            mentions = [text] if text and not text.startswith("/") else []
        return {"return_items": mentions} if mentions else {}

    async def extract_return_reason(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        values = _entity_values(tracker, "return_reason") if _answers(tracker) else []
        if _may_read_text(tracker, "return_reason"):
            # The words themselves too: the entity model may have marked too little of them
            # ("arrived" out of "arrived smashed").
            values.append(tracker.latest_message.get("text") or "")
        reason = await reason_in(values, by_meaning=intent_of(tracker.latest_message) == "report_problem")
        if reason:
            return {"return_reason": reason}
        if values and tracker.get_slot("requested_slot") == "return_reason":
            return {"return_reason": values[-1]}  # validation says it was not understood
        return {}

    async def extract_return_flag_answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if tracker.get_slot("requested_slot") != "return_flag_answer":
            return {}
        answer = {"affirm": True, "deny": False}.get(intent_of(tracker.latest_message) or "")
        return {} if answer is None else {"return_flag_answer": answer}

    async def extract_return_resolution(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._extract_choice(tracker, "return_resolution", vocabulary().resolutions)

    async def extract_return_method(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._extract_choice(tracker, "return_method", vocabulary().methods)

    @staticmethod
    def _extract_choice(tracker: Tracker, slot: str, choices: dict[str, Choice]) -> dict[str, Any]:
        values = _entity_values(tracker, slot)
        if values:
            return {slot: values[-1]}
        text = tracker.latest_message.get("text") or ""
        if text.startswith("/"):
            return {}
        value = match_choice(text, choices)
        if value and tracker.get_slot("requested_slot") == slot and _no_other_meaning(tracker):
            # The answer to the question asked, in the vocabulary's words, though the model
            # read it as off-topic ("pick up from my house"); a real digression ("how long
            # does a refund take?") is answered and does not fill the question.
            return {slot: value}
        if not _answers(tracker):
            return {}
        if value:  # named outright, even while another question is open: a correction
            return {slot: value}
        if tracker.get_slot("requested_slot") == slot and text.strip():
            return {slot: text}  # validation says what the choices are
        return {}

    # -- validation --

    async def validate_order_id(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        current = tracker.get_slot("return_order")
        if current and not _answers(tracker) and normalise_order_number(value) != current:
            # "where is my order 100234?" in the middle of a return: not a new order for it.
            dispatcher.utter_message(response="utter_return_finish_first", order_id=current)
            return {"order_id": current}
        result = await super().validate_order_id(value, dispatcher, tracker, domain)
        number = result.get("order_id")
        if number and number != current:
            # Another order: its items, and what was decided about the old ones, start over.
            keep = {} if current else {"return_items": tracker.get_slot("return_items")}
            result = {**cleared_return_slots(keep_reason=True), **keep, **result}
        if number and result.get("customer_email"):  # ownership proven earlier in the conversation
            order = await get_shop().get_order(number)
            if order is not None:
                result.update(await self._on_verified(order, tracker, dispatcher, result))
        return result

    async def validate_customer_email(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        result = await super().validate_customer_email(value, dispatcher, tracker, domain)
        if result.get("verified_email"):
            number = normalise_order_number(tracker.get_slot("order_id"))
            order = await get_shop().get_order(number) if number else None
            if order is not None:
                result.update(await self._on_verified(order, tracker, dispatcher, result))
        return result

    async def _on_verified(
        self, order: Order, tracker: Tracker, dispatcher: CollectingDispatcher, pending: dict[str, Any]
    ) -> dict[str, Any]:
        """The order is the customer's: the checks that need no more answers run now."""
        if order.status != "delivered":
            return {"return_blocked": "not_delivered", "return_order": order.number}
        if flow_of(tracker) == "problem" and not tracker.get_slot("return_reason"):
            return {"return_order": order.number}  # the reason comes first in a problem report
        mentions = pending.get("return_items", tracker.get_slot("return_items")) or []
        chosen = match_items(order, mentions)
        if not chosen and len(order.items) == 1:
            chosen = list(order.items)
        return await self._decide(order, chosen, tracker, dispatcher)

    async def validate_return_items(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        order = await owned_order(tracker)
        if order is None:
            return {"return_items": value}  # kept until the order is proven, then matched
        chosen = match_items(order, value if isinstance(value, list) else [value])
        if not chosen:
            dispatcher.utter_message(response="utter_return_item_unknown", order_id=order.number)
            return {"return_items": None}
        return await self._decide(order, chosen, tracker, dispatcher)

    async def _decide(
        self, order: Order, chosen: Sequence[OrderItem], tracker: Tracker, dispatcher: CollectingDispatcher
    ) -> dict[str, Any]:
        """Applies the policy to the chosen items: blocked ones are explained, and if none
        is left the form ends with the rule that blocks them."""
        if not chosen:  # nothing the customer said matches an item: ask which one
            return {"return_items": None, "return_order": order.number}
        policy = await current_policy()
        returns = await get_shop().returns_for_order(order.number)
        names = [item.name for item in chosen]
        decided = {"return_items": names, "return_order": order.number}
        verdicts = [return_rules.item_verdict(policy, order, item, today(), returns) for item in chosen]
        if flow_of(tracker) == "problem":
            # Our mistake, not the customer's choice: the report window replaces the return
            # window, and the categories and flags that are never returnable do not apply.
            # Only an item already being returned stays out.
            verdicts = [
                v
                if v.rule in ("already_returned", "not_delivered")
                else return_rules.ItemVerdict(v.item, True, "ok")
                for v in verdicts
            ]
        allowed = [v.item for v in verdicts if v.allowed]
        blocked = [v for v in verdicts if not v.allowed]
        if not allowed:
            first = blocked[0]
            return {**decided, "return_blocked": first.rule, "return_notice": self._explain(first)}
        for verdict in blocked:
            dispatcher.utter_message(
                response="utter_return_item_blocked",
                item=verdict.item.name,
                explanation=self._explain(verdict),
            )
        if blocked:
            dispatcher.utter_message(
                response="utter_return_going_on", items=item_names_text([item.name for item in allowed])
            )
        decided["return_items"] = [item.name for item in allowed]
        if flow_of(tracker) == "problem":
            now = dt.datetime.now(dt.timezone.utc)
            verdict = return_rules.problem_verdict(policy, order, allowed, now)
            if verdict.rule != "ok":
                return {**decided, "return_blocked": verdict.rule, "return_notice": verdict.explanation}
        elif reason := tracker.get_slot("return_reason"):  # said before the items were known
            decided.update(await self._next_question(order, tracker, decided, reason))
        return decided

    @staticmethod
    def _explain(verdict: return_rules.ItemVerdict) -> str:
        if verdict.rule == "already_returned":
            return f"It is already being returned ({verdict.existing_rma})."
        return " ".join(part for part in (verdict.explanation, verdict.warranty) if part)

    async def validate_return_reason(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        reason = await asyncio.to_thread(read_choice, str(value or ""), vocabulary().reasons)
        flow = flow_of(tracker)
        if reason is None:
            dispatcher.utter_message(response="utter_return_reason_unknown")
            return {"return_reason": None}
        if str(value) not in vocabulary().reasons:
            # Read from typed words, which can be misread: say what was understood, so the
            # customer can put it right (a button needs no such echo).
            dispatcher.utter_message(
                response="utter_return_reason_understood", reason=vocabulary().reasons[reason].label
            )
        result: dict[str, Any] = {"return_reason": reason}
        problem_reasons = (await current_policy()).problem_reasons
        if flow == "problem" and reason not in problem_reasons:
            result["return_flow"] = "return"  # a fault or a change of mind: the return rules apply
        elif flow == "return" and reason in problem_reasons:
            result["return_flow"] = "problem"  # damaged, wrong or missing: the report rules apply
        order = await owned_order(tracker)
        if result.get("return_flow") or (flow == "problem" and tracker.get_slot("return_items")):
            items = tracker.get_slot("return_items") or []
            if order is not None and items:
                # The items were judged under the other rules: judge them again.
                changed = tracker.copy()
                changed.slots["return_flow"] = result.get("return_flow", flow)
                changed.slots["return_reason"] = reason
                result.update(await self._decide(order, items_named(order, items), changed, dispatcher))
        result.update(await self._next_question(order, tracker, result, reason))
        return result

    async def _next_question(
        self, order: Order | None, tracker: Tracker, decided: dict[str, Any], reason: str
    ) -> dict[str, Any]:
        """The next flag the policy asks about for these items (opened? seal removed?)."""
        flow = decided.get("return_flow", flow_of(tracker))
        if order is None or flow != "return" or decided.get("return_blocked"):
            return {"return_flag": None}
        items = items_named(order, decided.get("return_items", tracker.get_slot("return_items")) or [])
        answered = decided.get("return_flags_checked", tracker.get_slot("return_flags_checked")) or []
        pending = return_rules.flag_questions(await current_policy(), items, reason, answered)
        return (
            {"return_flag": pending[0].flag, "return_flag_answer": None} if pending else {"return_flag": None}
        )

    async def validate_return_flag_answer(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """A yes to "have they been opened?" blocks the items of that flag's categories."""
        policy = await current_policy()
        flag = tracker.get_slot("return_flag")
        question = policy.flag_question(flag)
        order = await owned_order(tracker)
        if question is None or order is None:
            return {"return_flag": None, "return_flag_answer": None}
        items = chosen_items(order, tracker)
        result: dict[str, Any] = {
            "return_flag_answer": bool(value),
            "return_flags_checked": [*(tracker.get_slot("return_flags_checked") or []), flag],
        }
        if value:
            explanation = policy.non_returnable_flags[question.flag]
            hit = [item for item in items if item.category in question.categories]
            rest = [item for item in items if item not in hit]
            if not rest:
                return {
                    **result,
                    "return_flag": None,
                    "return_blocked": f"flag:{flag}",
                    "return_notice": explanation,
                }
            for item in hit:
                dispatcher.utter_message(
                    response="utter_return_item_blocked", item=item.name, explanation=explanation
                )
            dispatcher.utter_message(
                response="utter_return_going_on", items=item_names_text([i.name for i in rest])
            )
            result["return_items"] = [item.name for item in rest]
        reason = tracker.get_slot("return_reason") or "other"
        return {**result, **await self._next_question(order, tracker, result, reason)}

    async def validate_return_resolution(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        resolution = await asyncio.to_thread(read_choice, str(value or ""), vocabulary().resolutions)
        problem = flow_of(tracker) == "problem"
        if resolution in ("exchange", "replacement"):
            resolution = "replacement" if problem else "exchange"
        if resolution is None:
            dispatcher.utter_message(response="utter_return_choose_one")
            return {"return_resolution": None}
        if resolution == "exchange":
            order = await owned_order(tracker)
            if order is not None:
                policy = await current_policy()
                items = chosen_items(order, tracker)
                returns = await get_shop().returns_for_order(order.number)
                if not return_rules.exchange_allowed(policy, items, returns):
                    dispatcher.utter_message(text=policy.exchange.explanation)
                    return {"return_resolution": None}
        return {"return_resolution": resolution}

    async def validate_return_method(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        method = await asyncio.to_thread(read_choice, str(value or ""), vocabulary().methods)
        if method == "pickup" and not (await current_policy()).free_pickup:
            method = None
        if method is None:
            dispatcher.utter_message(response="utter_return_choose_one")
            return {"return_method": None}
        return {"return_method": method}


# --- questions with buttons ----------------------------------------------------------------------


def _buttons(choices: Iterable[Choice], slot: str) -> list[dict[str, str]]:
    return [{"title": choice.label, "payload": inform_payload(slot, choice.value)} for choice in choices]


def inform_payload(entity: str, value: str) -> str:
    return "/inform" + json.dumps({entity: value})


class ActionAskReturnItems(Action):
    def name(self) -> str:
        return "action_ask_return_items"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        order = await owned_order(tracker)
        if order is None:
            return []
        buttons = [
            {"title": item.name, "payload": inform_payload("product", item.name)} for item in order.items
        ]
        if len(order.items) > 1:
            buttons.append({"title": "All of them", "payload": inform_payload("product", "all of them")})
        response = "utter_ask_problem_items" if flow_of(tracker) == "problem" else "utter_ask_return_items"
        dispatcher.utter_message(response=response, order_id=order.number, buttons=buttons)
        return []


class ActionAskReturnReason(Action):
    def name(self) -> str:
        return "action_ask_return_reason"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        words = vocabulary()
        flow = flow_of(tracker)
        choices = [words.reasons[value] for value in words.reason_buttons[flow]]
        response = "utter_ask_problem_reason" if flow == "problem" else "utter_ask_return_reason"
        dispatcher.utter_message(response=response, buttons=_buttons(choices, "return_reason"))
        return []


class ActionAskReturnFlagAnswer(Action):
    """The policy's own question about the item (knowledge_base/return_policy.yml)."""

    def name(self) -> str:
        return "action_ask_return_flag_answer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        question = (await current_policy()).flag_question(tracker.get_slot("return_flag"))
        if question is not None:
            buttons = [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]
            dispatcher.utter_message(text=question.question, buttons=buttons)
        return []


class ActionAskReturnResolution(Action):
    def name(self) -> str:
        return "action_ask_return_resolution"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        words = vocabulary()
        values = ("replacement", "refund") if flow_of(tracker) == "problem" else ("refund", "exchange")
        dispatcher.utter_message(
            response="utter_ask_return_resolution",
            buttons=_buttons((words.resolutions[value] for value in values), "return_resolution"),
        )
        return []


class ActionAskReturnMethod(Action):
    def name(self) -> str:
        return "action_ask_return_method"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        words = vocabulary()
        values = ("pickup", "drop_off") if (await current_policy()).free_pickup else ("drop_off",)
        dispatcher.utter_message(
            response="utter_ask_return_method",
            buttons=_buttons((words.methods[value] for value in values), "return_method"),
        )
        return []


# --- starting, submitting ------------------------------------------------------------------------


class ActionStartReturn(Action):
    """A new return starts from what this message says and the order under discussion: a
    named item of another of the customer's delivered orders picks that order, and an order
    still on its way is not assumed to be the one going back."""

    def name(self) -> str:
        return "action_start_return"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events = [SlotSet("return_flow", "return"), *_slot_events(cleared_return_slots())]
        if _entity_values(tracker, "order_id"):
            return events
        return [*events, *await self._order_from_memory(tracker)]

    @staticmethod
    async def _order_from_memory(tracker: Tracker) -> list[EventType]:
        kept = proven_order(tracker)
        email = tracker.get_slot("verified_email")
        products = _entity_values(tracker, "product")
        if email and products:
            delivered = [order for order in await get_shop().orders_of(email) if order.status == "delivered"]
            having = [order for order in delivered if match_items(order, products)]
            if len(having) == 1:
                return [SlotSet("order_id", having[0].number), SlotSet("customer_email", email)]
        if kept:
            order = await get_shop().get_order(kept)
            if order is None or order.status != "delivered":
                return [SlotSet("order_id", None), SlotSet("customer_email", None)]
        return []


class ActionReportProblem(Action):
    """A damaged, wrong or missing item. A safety problem goes to a person at once; the rest
    runs the return form's problem flow (replacement or refund, or a person when late)."""

    def name(self) -> str:
        return "action_report_problem"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if problem_kind(tracker) == "safety":
            details = await escalation_details(tracker, "high_impact", await owned_order(tracker), "safety")
            # The form that follows ends at once: there is nothing left to collect.
            return [
                *hand_over(dispatcher, "utter_escalate", details),
                SlotSet("return_blocked", "handed_over"),
            ]
        offered = tracker.get_slot("offered_problem")
        if intent_of(tracker.latest_message) == "affirm" and offered:
            # "Shall I start a report?" answered yes: what the first message said carries on.
            said = {
                "return_reason": await reason_in([offered.get("text") or ""], by_meaning=True),
                "return_items": offered.get("items"),
            }
            return [
                SlotSet("return_flow", "problem"),
                *_slot_events(cleared_return_slots()),
                *_slot_events({slot: value for slot, value in said.items() if value}),
                SlotSet("report_offered", False),
                SlotSet("offered_problem", None),
            ]
        answered = await self._answer_question(dispatcher, tracker)
        if answered:
            # The form that follows ends at once; the customer says whether to start a report.
            return [*answered, SlotSet("return_blocked", "answered")]
        return [SlotSet("return_flow", "problem"), *_slot_events(cleared_return_slots())]

    @staticmethod
    async def _answer_question(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
        """A policy question inside the report ("it arrived cracked, how long do I have to
        report it?"): the knowledge base answers it, and the report is offered, not forced."""
        message = tracker.latest_message or {}
        text = message.get("text") or ""
        if not QUESTION.search(text):
            return []
        index = await asyncio.to_thread(knowledge_service().index)
        verdict = await asyncio.to_thread(index.decide, text)
        if verdict.kind != "answer" or verdict.best is None:
            return []
        article = index.knowledge_base.article(verdict.best.article_id)
        dispatcher.utter_message(text=article.body)
        return offer_report(dispatcher, tracker, article)


class ActionDeclineReport(Action):
    """ "Shall I start a report?" answered no."""

    def name(self) -> str:
        return "action_decline_report"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_anything_else")
        return [SlotSet("report_offered", False), SlotSet("offered_problem", None)]


def _slot_events(values: dict[str, Any]) -> list[EventType]:
    return [SlotSet(slot, value) for slot, value in values.items()]


class ActionSubmitReturn(Action):
    def name(self) -> str:
        return "action_submit_return"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        blocked = tracker.get_slot("return_blocked")
        if blocked == "handed_over":
            return reset_events(tracker)
        if blocked == "answered":  # a question inside a report: answered, the report offered
            # The offer is set again here: the form that ran in between read the message's
            # intent (not a yes or a no) into `report_offered` and let it lapse.
            return reset_events(tracker, return_flow=None, report_offered=True)
        order = await owned_order(tracker)
        if order is None:
            return explain_failure(dispatcher, tracker)
        if blocked:
            return await self._blocked(dispatcher, tracker, order, blocked)
        policy = await current_policy()
        items = chosen_items(order, tracker)
        reason = tracker.get_slot("return_reason") or "other"
        resolution = tracker.get_slot("return_resolution") or "refund"
        method = tracker.get_slot("return_method") or "none"
        fee = return_rules.fee(policy, reason, resolution)
        pickup = add_business_days(today(), policy.pickup_after_business_days) if method == "pickup" else None
        request = NewReturn(
            order_number=order.number,
            item_names=tuple(item.name for item in items),
            reason=reason,
            resolution=resolution,
            method=method,
            fee=fee,
            refund_amount=return_rules.refund_amount(items, fee) if resolution == "refund" else None,
            pickup_date=pickup,
        )
        created, new = await get_shop().create_return(request)
        confirm(
            dispatcher, policy, order, created, new, condition=return_rules.condition_applies(policy, reason)
        )
        return reset_events(tracker)

    @staticmethod
    async def _blocked(
        dispatcher: CollectingDispatcher, tracker: Tracker, order: Order, blocked: str
    ) -> list[EventType]:
        notice = tracker.get_slot("return_notice") or ""
        if blocked == "not_delivered" and flow_of(tracker) == "problem" and order.status == "shipped":
            # "it never arrived" about a parcel still on its way: where it is, and a person.
            response, variables = status_response(order)
            dispatcher.utter_message(response=response, **variables)
            dispatcher.utter_message(response="utter_offer_human")
            return reset_events(tracker, human_offered=True)
        if blocked == "not_delivered":
            response = {
                "processing": "utter_return_not_shipped",
                "cancelled": "utter_return_order_cancelled",
            }.get(order.status, "utter_return_not_delivered")
            dispatcher.utter_message(response=response, order_id=order.number)
            return reset_events(tracker)
        if blocked in ("problem_window", "high_value"):
            dispatcher.utter_message(text=notice)
            problem = tracker.get_slot("return_reason")
            reason = "late_problem_report" if blocked == "problem_window" else "high_value_problem"
            details = await escalation_details(tracker, reason, order, problem)
            details["items"] = tracker.get_slot("return_items") or []
            return hand_over(dispatcher, "utter_handoff", details)
        items = tracker.get_slot("return_items") or []
        dispatcher.utter_message(
            response="utter_return_blocked", items=item_names_text(items), explanation=notice
        )
        dispatcher.utter_message(response="utter_offer_human")
        return reset_events(tracker, human_offered=True)


def item_names_text(names: Sequence[str]) -> str:
    names = list(names)
    if not names:
        return "this item"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def refund_words(policy: ReturnPolicy, order: Order) -> str:
    if return_rules.refund_destination(policy, order) == "store_credit":
        return "as store credit"
    return "to your original payment method"


def confirm(
    dispatcher: CollectingDispatcher,
    policy: ReturnPolicy,
    order: Order,
    request: ReturnRequest,
    new: bool,
    condition: bool,
) -> None:
    """The confirmation: RMA number, next step, any fee, and when the money comes back."""
    items = item_names_text(request.item_names)
    dispatcher.utter_message(
        response="utter_return_created" if new else "utter_return_already_open", rma=request.rma, items=items
    )
    free = "_free" if not request.fee else ""
    if request.method == "pickup" and request.pickup_date:
        dispatcher.utter_message(
            response=f"utter_return_next_pickup{free}", pickup_date=format_day(request.pickup_date)
        )
    elif request.method == "drop_off":
        dispatcher.utter_message(response=f"utter_return_next_label{free}", rma=request.rma)
    if request.resolution == "refund" and request.refund_amount is not None:
        response = "utter_return_refund_with_fee" if request.fee else "utter_return_refund"
        dispatcher.utter_message(
            response=response,
            amount=f"{request.refund_amount:.2f}",
            fee=f"{request.fee:.2f}",
            business_days=policy.refund.business_days_after_receipt,
            bank_days=policy.refund.bank_days,
            destination=refund_words(policy, order),
            received="receives it" if request.method != "none" else "confirms the report",
        )
    elif request.resolution == "exchange":
        dispatcher.utter_message(response="utter_return_exchange")
    elif request.resolution == "replacement":
        dispatcher.utter_message(response="utter_return_replacement")
    if condition and request.method != "none":
        dispatcher.utter_message(text=policy.condition.explanation)


# --- return and refund status --------------------------------------------------------------------


RMA = re.compile(r"^RMA-?\d+$", re.IGNORECASE)


class ValidateReturnStatusForm(OrderOwnershipValidation):
    """Order status's ownership check, reached by RMA number or by order number."""

    def name(self) -> str:
        return "validate_return_status_form"

    async def extract_order_id(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        rmas = _entity_values(tracker, "rma_id")
        if rmas:  # validation looks it up and puts its order in its place
            return {"order_id": rmas[-1].upper()}
        return await super().extract_order_id(dispatcher, tracker, domain)

    async def validate_order_id(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = str((value[-1] if value else "") if isinstance(value, list) else value or "").strip()
        if not RMA.match(text):
            return {**await super().validate_order_id(value, dispatcher, tracker, domain), "rma_id": None}
        request = await get_shop().get_return(text)
        if request is None:
            dispatcher.utter_message(response="utter_rma_not_found", rma=text.upper())
            tries = attempts(tracker, "order_attempts") + 1
            return {"order_id": None, "rma_id": None, "order_attempts": float(tries)}
        result = await super().validate_order_id(request.order_number, dispatcher, tracker, domain)
        return {**result, "rma_id": request.rma}


class ActionReturnStatus(Action):
    def name(self) -> str:
        return "action_return_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        order = await owned_order(tracker)
        if order is None:
            return explain_failure(dispatcher, tracker)
        returns = await get_shop().returns_for_order(order.number)
        rma = tracker.get_slot("rma_id")
        if rma:
            returns = [request for request in returns if request.rma == rma]
        if not returns:
            dispatcher.utter_message(response="utter_no_return", order_id=order.number)
        policy = await current_policy()
        for request in returns:
            for response, variables in return_status_responses(policy, order, request):
                dispatcher.utter_message(response=response, **variables)
        return reset_events(tracker)


def return_status_responses(
    policy: ReturnPolicy, order: Order, request: ReturnRequest
) -> list[tuple[str, dict[str, Any]]]:
    """Where a return stands, and, while it is under way, what follows (a refund, the new
    size, the replacement), as responses with their variables."""
    reached = {change.status: change.at for change in request.history}
    variables: dict[str, Any] = {
        "rma": request.rma,
        "items": item_names_text(request.item_names),
        "requested_date": format_day(request.requested_at),
        "business_days": policy.refund.business_days_after_receipt,
        "bank_days": policy.refund.bank_days,
        "destination": refund_words(policy, order),
    }
    if request.status == "refunded":
        when = request.refunded_at or reached.get("refunded") or request.requested_at
        amount = request.refund_amount if request.refund_amount is not None else Decimal("0")
        refunded = {**variables, "amount": f"{amount:.2f}", "refunded_date": format_day(when)}
        return [("utter_return_refunded", refunded)]
    if request.status in ("exchanged", "rejected"):
        return [(f"utter_return_{request.status}", variables)]
    if request.status == "pickup_scheduled" and request.pickup_date:
        now = ("utter_return_pickup_scheduled", {**variables, "pickup_date": format_day(request.pickup_date)})
    elif request.status == "label_sent":
        now = ("utter_return_label_sent", variables)
    elif request.status == "received":
        when = reached.get("received") or request.requested_at
        now = ("utter_return_received", {**variables, "received_date": format_day(when)})
    else:
        now = ("utter_return_requested", variables)
    return [now, (f"utter_return_then_{request.resolution}", variables)]
