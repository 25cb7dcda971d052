"""`return_form`'s validation: the order (and proof that it is the customer's, as for order
status), the items, the reason, the policy's own questions (opened? seal removed?), refund
or exchange, pickup or drop-off. The policy decides as soon as it can (rules.py): an item
that cannot be returned is explained when it is chosen, not after five questions. A problem
report (damaged, wrong or missing item) runs the same form in its `problem` flow."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import knowledge
from actions.backend import get_shop
from actions.helpdesk import intent_of
from actions.orders import OrderOwnershipValidation, normalise_order_number, owned_order
from actions.returns import rules
from actions.returns.replies import item_names_text
from actions.returns.slots import (
    answers,
    chosen_items,
    cleared_return_slots,
    entity_values,
    flow_of,
    may_read_text,
    no_other_meaning,
    reason_in,
    today,
)
from actions.returns.vocabulary import Choice, items_named, match_choice, match_items, read_choice, vocabulary
from actions.shop.base import Order, OrderItem


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
        mentions = entity_values(tracker, "product") if answers(tracker) else []
        text = (tracker.latest_message.get("text") or "").strip()
        if (
            not mentions
            and tracker.get_slot("requested_slot") == "return_items"
            and may_read_text(tracker, "return_items")
        ):
            mentions = [text] if text and not text.startswith("/") else []
        return {"return_items": mentions} if mentions else {}

    async def extract_return_reason(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        values = entity_values(tracker, "return_reason") if answers(tracker) else []
        if may_read_text(tracker, "return_reason"):
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
        values = entity_values(tracker, slot)
        if values:
            return {slot: values[-1]}
        text = tracker.latest_message.get("text") or ""
        if text.startswith("/"):
            return {}
        value = match_choice(text, choices)
        if value and tracker.get_slot("requested_slot") == slot and no_other_meaning(tracker):
            # The answer to the question asked, in the vocabulary's words, though the model
            # read it as off-topic ("pick up from my house"); a real digression ("how long
            # does a refund take?") is answered and does not fill the question.
            return {slot: value}
        if not answers(tracker):
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
        if current and not answers(tracker) and normalise_order_number(value) != current:
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
        policy = await knowledge.current_policy()
        returns = await get_shop().returns_for_order(order.number)
        names = [item.name for item in chosen]
        decided = {"return_items": names, "return_order": order.number}
        verdicts = [rules.item_verdict(policy, order, item, today(), returns) for item in chosen]
        if flow_of(tracker) == "problem":
            # Our mistake, not the customer's choice: the report window replaces the return
            # window, and the categories and flags that are never returnable do not apply.
            # Only an item already being returned stays out.
            verdicts = [
                v
                if v.rule in ("already_returned", "not_delivered")
                else rules.ItemVerdict(v.item, True, "ok")
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
            verdict = rules.problem_verdict(policy, order, allowed, now)
            if verdict.rule != "ok":
                return {**decided, "return_blocked": verdict.rule, "return_notice": verdict.explanation}
        elif reason := tracker.get_slot("return_reason"):  # said before the items were known
            decided.update(await self._next_question(order, tracker, decided, reason))
        return decided

    @staticmethod
    def _explain(verdict: rules.ItemVerdict) -> str:
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
        problem_reasons = (await knowledge.current_policy()).problem_reasons
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
        pending = rules.flag_questions(await knowledge.current_policy(), items, reason, answered)
        return (
            {"return_flag": pending[0].flag, "return_flag_answer": None} if pending else {"return_flag": None}
        )

    async def validate_return_flag_answer(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """A yes to "have they been opened?" blocks the items of that flag's categories."""
        policy = await knowledge.current_policy()
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
                policy = await knowledge.current_policy()
                items = chosen_items(order, tracker)
                returns = await get_shop().returns_for_order(order.number)
                if not rules.exchange_allowed(policy, items, returns):
                    dispatcher.utter_message(text=policy.exchange.explanation)
                    return {"return_resolution": None}
        return {"return_resolution": resolution}

    async def validate_return_method(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        method = await asyncio.to_thread(read_choice, str(value or ""), vocabulary().methods)
        if method == "pickup" and not (await knowledge.current_policy()).free_pickup:
            method = None
        if method is None:
            dispatcher.utter_message(response="utter_return_choose_one")
            return {"return_method": None}
        return {"return_method": method}
