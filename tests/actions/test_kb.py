"""The knowledge base: the shop's real files load and state store.md's numbers; broken copies
are reported with the file and the field, all problems at once."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from actions.kb import (
    KnowledgeBase,
    KnowledgeBaseError,
    load_articles,
    load_knowledge_base,
)
from actions.returns.policy import load_return_policy

KB_FOLDER = Path(__file__).resolve().parents[2] / "knowledge_base"

ARTICLE_IDS = {
    "return-window",
    "non-returnable-items",
    "return-condition",
    "return-shipping",
    "how-to-return",
    "refund-timing",
    "exchanges",
    "damaged-wrong-missing",
    "cancel-order",
    "change-address",
    "shipping-times-costs",
    "international-shipping",
    "payment-methods",
    "warranty",
    "price-adjustment",
    "gift-cards",
    "agent-hours",
    "harbor-club-vip",
}

# store.md's policy numbers, by the article that must state them.
NUMBERS_BY_ARTICLE = {
    "return-window": ["30 days", "15 days"],
    "return-shipping": ["$5.95"],
    "damaged-wrong-missing": ["48 hours"],
    "refund-timing": ["2 business days", "3-5 business days"],
    "shipping-times-costs": ["3-5 business days", "$50", "$4.99", "1-2 business days", "$9.99"],
    "international-shipping": ["7-14 business days", "$19.99", "Canada", "UK", "EU", "Australia"],
    "warranty": ["1-year", "2-year"],
    "price-adjustment": ["14 days"],
    "agent-hours": ["8:00-22:00 UTC", "24/7"],
    "harbor-club-vip": ["$1,000", "12 months"],
}


def plain(text: str) -> str:
    return text.replace("**", "").replace("*", "")


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_knowledge_base(KB_FOLDER)


def test_the_shop_knowledge_base_loads_with_every_topic(kb: KnowledgeBase) -> None:
    assert {article.id for article in kb.articles} == ARTICLE_IDS


def test_articles_have_varied_questions_and_a_short_answer(kb: KnowledgeBase) -> None:
    for article in kb.articles:
        assert len(article.questions) >= 20, article.id
        assert len(set(article.questions)) == len(article.questions), article.id
        assert article.tags, article.id
        assert article.title and article.body
        assert article.path.stem == article.id


@pytest.mark.parametrize(("article_id", "facts"), sorted(NUMBERS_BY_ARTICLE.items()))
def test_articles_state_the_policy_numbers_exactly(
    kb: KnowledgeBase, article_id: str, facts: list[str]
) -> None:
    body = plain(kb.article(article_id).body)
    for fact in facts:
        assert fact in body, f"{article_id} must say {fact!r}"


def test_specific_policy_facts_are_stated(kb: KnowledgeBase) -> None:
    bodies = {article.id: plain(article.body).lower() for article in kb.articles}
    assert "store credit" in bodies["refund-timing"]
    assert "cash on delivery" in bodies["payment-methods"]
    assert "courier pickup, free to book" in bodies["how-to-return"]
    # One statement of what a return costs: the fee applies to a pickup as to a drop-off.
    assert "$5.95 return shipping fee deducted either way" in bodies["how-to-return"]
    assert "fee is the same either way" in bodies["return-shipping"]
    for step in ("apply", "pickup or drop-off", "refund"):
        assert step in bodies["how-to-return"]
    assert "never expire" in bodies["gift-cards"]
    assert "processing" in bodies["cancel-order"]
    assert "queue" in bodies["agent-hours"]
    for item in ("gift cards", "final-sale", "engraved", "in-ear headphones", "hygiene seal"):
        assert item in bodies["non-returnable-items"]


def test_the_return_policy_matches_store_md(kb: KnowledgeBase) -> None:
    policy = kb.return_policy
    assert policy.window_days == 30
    assert policy.window_for("electronics") == 15
    assert policy.window_for("apparel") == 30
    assert policy.window_starts == "delivery"
    assert set(policy.non_returnable_categories) == {"gift_card", "final_sale"}
    assert {"personalised", "in_ear_headphones_opened", "hygiene_seal_removed"} <= set(
        policy.non_returnable_flags
    )
    assert all(policy.non_returnable_flags.values())
    assert "defective" in policy.condition.exempt_reasons
    assert policy.label_fee("changed_mind") == policy.label_fee("doesnt_fit") == Decimal("5.95")
    assert policy.label_fee("defective") == policy.label_fee("damaged") == policy.label_fee("wrong_item") == 0
    assert policy.free_pickup is True
    assert policy.refund.business_days_after_receipt == 2
    assert policy.refund.bank_days == "3-5"
    assert policy.refund.gift_card_orders == "store_credit"
    assert policy.exchange.free_exchanges_per_item == 1
    assert policy.exchange.within_return_window is True
    assert policy.problem_report_hours == 48


def test_the_articles_and_the_return_policy_agree(kb: KnowledgeBase) -> None:
    policy = kb.return_policy

    def says(article_id: str, fact: str) -> bool:
        return fact in plain(kb.article(article_id).body)

    assert says("return-window", f"{policy.window_days} days")
    assert says("return-window", f"{policy.window_for('electronics')} days")
    assert says("return-shipping", f"${policy.label_fee('changed_mind')}")
    assert says("damaged-wrong-missing", f"{policy.problem_report_hours} hours")
    assert says("refund-timing", f"{policy.refund.business_days_after_receipt} business days")
    assert says("refund-timing", f"{policy.refund.bank_days} business days")


# --- broken copies ---------------------------------------------------------------------------


@pytest.fixture
def broken_kb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the real folder at tmp_path/knowledge_base, with tmp_path as the working directory."""
    folder = tmp_path / "knowledge_base"
    shutil.copytree(KB_FOLDER, folder)
    monkeypatch.chdir(tmp_path)
    return folder


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def article(folder: Path, article_id: str) -> Path:
    return folder / "articles" / f"{article_id}.md"


def policy(folder: Path) -> Path:
    return folder / "return_policy.yml"


Breakage = Callable[[Path], None]

BREAKAGES: dict[str, tuple[Breakage, str]] = {
    "questions not a list": (
        lambda kb: replace(
            article(kb, "gift-cards"),
            "questions:\n  - Do gift cards expire?\n",
            "questions: Do gift cards expire?\nold_questions:\n  - Do gift cards expire?\n",
        ),
        "knowledge_base/articles/gift-cards.md: "
        "front matter field 'questions' must be a non-empty list of strings",
    ),
    "no front matter": (
        lambda kb: article(kb, "warranty").write_text(
            "Electronics have a 1-year warranty.\n", encoding="utf-8"
        ),
        "knowledge_base/articles/warranty.md: front matter is missing",
    ),
    "empty front matter": (
        lambda kb: article(kb, "warranty").write_text("---\n---\nSome answer.\n", encoding="utf-8"),
        "knowledge_base/articles/warranty.md: front matter is empty",
    ),
    "unclosed front matter": (
        lambda kb: replace(
            article(kb, "warranty"), "tags: [warranty, electronics, protection-plan]\n---", "x: 1"
        ),
        "knowledge_base/articles/warranty.md: front matter is not closed",
    ),
    "id differs from file name": (
        lambda kb: replace(article(kb, "exchanges"), "id: exchanges", "id: exchange"),
        "knowledge_base/articles/exchanges.md: "
        "front matter field 'id' is 'exchange' but must equal the file name",
    ),
    "missing title": (
        lambda kb: replace(article(kb, "exchanges"), "title: Can I exchange an item?\n", ""),
        "knowledge_base/articles/exchanges.md: front matter field 'title' is required",
    ),
    "title not a string": (
        lambda kb: replace(article(kb, "exchanges"), "title: Can I exchange an item?", "title: [a, b]"),
        "knowledge_base/articles/exchanges.md: front matter field 'title' must be a non-empty string",
    ),
    "tags not a list of strings": (
        lambda kb: replace(
            article(kb, "exchanges"), "tags: [exchanges, size, colour, returns]", "tags: {a: 1}"
        ),
        "knowledge_base/articles/exchanges.md: front matter field 'tags' must be a list of strings",
    ),
    "unknown front matter key": (
        lambda kb: replace(article(kb, "exchanges"), "id: exchanges\n", "id: exchanges\nanswer: yes\n"),
        "knowledge_base/articles/exchanges.md: front matter field 'answer' is not a known field",
    ),
    "empty body": (
        lambda kb: article(kb, "cancel-order").write_text(
            article(kb, "cancel-order").read_text(encoding="utf-8").split("tags: [orders, cancellation]")[0]
            + "tags: [orders]\n---\n\n",
            encoding="utf-8",
        ),
        "knowledge_base/articles/cancel-order.md: article body is empty",
    ),
    "invalid YAML": (
        lambda kb: replace(article(kb, "cancel-order"), "title: Can I cancel my order?", 'title: "unclosed'),
        "knowledge_base/articles/cancel-order.md: invalid YAML at line",
    ),
    "not UTF-8": (
        lambda kb: article(kb, "cancel-order").write_bytes(
            article(kb, "cancel-order")
            .read_text(encoding="utf-8")
            .replace("free", "fr\u00e9e")
            .encode("latin-1")
        ),
        "knowledge_base/articles/cancel-order.md: is not valid UTF-8",
    ),
    "negative window": (
        lambda kb: replace(policy(kb), "window_days: 30", "window_days: -30"),
        "knowledge_base/return_policy.yml: field 'window_days' must be a whole number >= 0, not -30",
    ),
    "non-numeric category window": (
        lambda kb: replace(policy(kb), "electronics: 15", "electronics: fifteen"),
        "knowledge_base/return_policy.yml: "
        "field 'window_days_by_category.electronics' must be a whole number",
    ),
    "non-numeric fee": (
        lambda kb: replace(policy(kb), "changed_mind: 5.95", "changed_mind: five"),
        "knowledge_base/return_policy.yml: field 'fees_by_reason.changed_mind' must be an amount >= 0",
    ),
    "negative fee": (
        lambda kb: replace(policy(kb), "defective: 0", "defective: -1"),
        "knowledge_base/return_policy.yml: field 'fees_by_reason.defective' must be an amount >= 0",
    ),
    "unknown reason": (
        lambda kb: replace(policy(kb), "other: 5.95", "other: 5.95\n  bored: 5.95"),
        "knowledge_base/return_policy.yml: field 'fees_by_reason.bored' is not a known reason",
    ),
    "missing reason": (
        lambda kb: replace(policy(kb), "  wrong_item: 0\n", ""),
        "knowledge_base/return_policy.yml: field 'fees_by_reason.wrong_item' is required",
    ),
    "unknown exempt reason": (
        lambda kb: replace(policy(kb), "exempt_reasons: [defective, damaged]", "exempt_reasons: [broken]"),
        "knowledge_base/return_policy.yml: field 'condition.exempt_reasons' names unknown reason 'broken'",
    ),
    "bad bank days": (
        lambda kb: replace(policy(kb), 'bank_days: "3-5"', 'bank_days: "5-3"'),
        "knowledge_base/return_policy.yml: field 'refund.bank_days' must be a number of days or a range",
    ),
    "missing explanation": (
        lambda kb: replace(
            policy(kb),
            "      explanation: This item was sold as final sale, so it can't be returned.\n",
            "      reason: final\n",
        ),
        "knowledge_base/return_policy.yml: "
        "field 'non_returnable.categories.final_sale.explanation' is required",
    ),
    "unknown placeholder": (
        lambda kb: replace(policy(kb), "within {days} days", "within {day} days"),
        "knowledge_base/return_policy.yml: field 'window_explanation' uses unknown placeholders ['day']",
    ),
    "flag question without its categories": (
        lambda kb: replace(policy(kb), "      ask_for: [in_ear_headphones]\n", ""),
        "knowledge_base/return_policy.yml: "
        "field 'non_returnable.flags.in_ear_headphones_opened.ask_for' is required",
    ),
    "empty choice": (
        lambda kb: replace(policy(kb), "window_starts: delivery", "window_starts:"),
        "knowledge_base/return_policy.yml: field 'window_starts' must be one of delivery, purchase, not None",
    ),
    "rule not a mapping": (
        lambda kb: replace(
            policy(kb),
            "    gift_card:\n      explanation: Gift cards can't be returned or refunded.",
            "    gift_card: no",
        ),
        "knowledge_base/return_policy.yml: "
        "field 'non_returnable.categories.gift_card' must be a mapping with an 'explanation'",
    ),
    "section not a mapping": (
        lambda kb: replace(
            policy(kb), "exchange:\n  free_exchanges_per_item: 1", "exchange: once\nold:\n  x: 1"
        ),
        "knowledge_base/return_policy.yml: field 'exchange' must be a mapping",
    ),
    "policy YAML broken": (
        lambda kb: replace(policy(kb), "free_pickup: true", "free_pickup: [true"),
        "knowledge_base/return_policy.yml: invalid YAML at line",
    ),
}


@pytest.mark.parametrize("kind", sorted(BREAKAGES))
def test_a_broken_copy_names_the_file_and_the_field(broken_kb: Path, kind: str) -> None:
    breakage, expected = BREAKAGES[kind]
    breakage(broken_kb)
    with pytest.raises(KnowledgeBaseError) as caught:
        load_knowledge_base("knowledge_base")
    assert any(error.startswith(expected) for error in caught.value.errors), caught.value.errors
    assert expected in str(caught.value)


def test_yaml_errors_point_at_the_line_in_the_file(broken_kb: Path) -> None:
    replace(article(broken_kb, "cancel-order"), "title: Can I cancel my order?", 'title: "unclosed')
    with pytest.raises(KnowledgeBaseError) as caught:
        load_articles("knowledge_base/articles")
    (error,) = caught.value.errors
    # line 1 is '---', line 2 the id, line 3 the broken title; the scanner notices at or after it
    line = int(error.split("at line ")[1].split(":")[0])
    assert line >= 3


def test_duplicate_ids_are_reported(broken_kb: Path) -> None:
    copy = article(broken_kb, "gift-cards-copy")
    shutil.copy(article(broken_kb, "gift-cards"), copy)
    with pytest.raises(KnowledgeBaseError) as caught:
        load_articles("knowledge_base/articles")
    assert (
        "knowledge_base/articles/gift-cards.md: front matter field 'id' 'gift-cards' is already used by "
        "gift-cards-copy.md"
    ) in caught.value.errors
    assert any(
        error.startswith("knowledge_base/articles/gift-cards-copy.md: front matter field 'id'")
        for error in caught.value.errors
    )


def test_a_single_article_needs_questions_it_does_not_answer(broken_kb: Path) -> None:
    for path in (broken_kb / "articles").glob("*.md"):
        if path.stem != "gift-cards":
            path.unlink()
    (broken_kb / "not_covered.yml").unlink()
    with pytest.raises(KnowledgeBaseError) as caught:
        load_knowledge_base("knowledge_base")
    (error,) = caught.value.errors
    assert error.startswith("knowledge_base/not_covered.yml: with a single article, retrieval needs")


def test_all_problems_are_reported_together(broken_kb: Path) -> None:
    for kind in (
        "questions not a list",
        "id differs from file name",
        "not UTF-8",
        "negative window",
        "unknown reason",
        "non-numeric fee",
    ):
        BREAKAGES[kind][0](broken_kb)
    with pytest.raises(KnowledgeBaseError) as caught:
        load_knowledge_base("knowledge_base")
    errors = caught.value.errors
    # six breakages, seven problems: the gift-cards breakage also leaves an unknown field behind
    assert len(errors) == 7, errors
    message = str(caught.value)
    assert message.startswith("7 problems in the knowledge base:")
    for name in ("gift-cards.md", "exchanges.md", "cancel-order.md", "return_policy.yml"):
        assert name in message


def test_one_article_can_have_several_problems(broken_kb: Path) -> None:
    path = article(broken_kb, "warranty")
    path.write_text("---\nid: guarantee\nquestions: []\nextra: 1\n---\n\n", encoding="utf-8")
    with pytest.raises(KnowledgeBaseError) as caught:
        load_articles("knowledge_base/articles")
    fields = {error.split("'")[1] for error in caught.value.errors if "front matter field" in error}
    assert fields == {"id", "title", "questions", "extra"}
    assert any("article body is empty" in error for error in caught.value.errors)


def test_the_loaders_work_on_their_own(broken_kb: Path) -> None:
    assert {a.id for a in load_articles(broken_kb / "articles")} == ARTICLE_IDS
    assert load_return_policy(broken_kb / "return_policy.yml").window_days == 30
    with pytest.raises(KnowledgeBaseError, match="articles folder not found"):
        load_articles(broken_kb / "nowhere")
    with pytest.raises(KnowledgeBaseError, match="return_policy.yml: cannot be read"):
        load_return_policy(broken_kb / "missing" / "return_policy.yml")
