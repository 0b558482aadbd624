"""End-to-end journeys in headless Chromium: the real app over HTTP, real RQ
workers, the fake OpenAI server (tests/fakes/openai_server.py).

Assertions are on what a person sees: text, counts, pressed buttons, the URL.
"""
from __future__ import annotations

import email
import email.policy
import itertools
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.fakes.openai_server import error

pytestmark = pytest.mark.browser

PASSWORD = "correct-horse-battery"
FINAL_CARDS = "article.variant[data-variant-id]"
QUOTA = "[data-testid=quota-remaining]"
GENERATION_URL = re.compile(r"/generations/(\d+)$")
GENERATION_TIMEOUT = 20_000  # ms: queue + worker + fake LLM + final render

# Short lines (Google Ads headlines allow 30 characters a line), ~20 words a variant.
HEADLINES = (
    "Copy that sells itself {n}",
    "Write ads in seconds {n}",
    "Your team, on brand {n}",
    "Try Copydeck free today {n}",
    "Headlines without the effort",
)

# JS predicate: a live variant shows text while no final card exists yet.
STREAMING_PROBE = """() => {
  if (document.querySelector('article.variant[data-variant-id]')) return {final: true, live: []};
  const live = [...document.querySelectorAll('.variant.live [data-role=text]')].map(e => e.textContent);
  return live.some(t => t.trim()) ? {final: false, live} : null;
}"""


# --------------------------------------------------------------------------- helpers


def sign_up(page: Page, address: str, password: str = PASSWORD) -> None:
    page.goto("/signup")
    page.fill("input[name=email]", address)
    page.fill("input[name=password]", password)
    page.fill("input[name=confirm]", password)
    page.click("form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/templates$"))
    expect(page.locator(".user-email")).to_have_text(address)


def log_in(page: Page, address: str, password: str) -> None:
    page.goto("/login")
    page.fill("input[name=email]", address)
    page.fill("input[name=password]", password)
    # Until the next page has loaded (htmx has wired its forms), typing into it may go unheard.
    with page.expect_navigation():
        page.click("form button[type=submit]")


def fill_generate_form(page: Page, values: dict[str, str], variants: int) -> None:
    """Fill every template field (inputs named f_*) and the variant count."""
    fields = page.locator("#generate-form [name^=f_]")
    expect(fields.first).to_be_visible()
    for field in fields.all():
        name = field.get_attribute("name")
        if field.evaluate("el => el.tagName") == "SELECT":
            field.select_option(index=1)
        else:
            field.fill(values.get(name, f"Sample {name[2:]} text"))
    page.fill("#generate-form [name=variant_count]", str(variants))


def generate(page: Page, slug: str, values: dict[str, str], variants: int) -> int:
    """Submit the form of `slug`; wait for the final cards; return the generation id."""
    page.goto(f"/write/{slug}")
    fill_generate_form(page, values, variants)
    page.click("#generate-form button[type=submit]")
    expect(page).to_have_url(GENERATION_URL)
    expect(page.locator(FINAL_CARDS)).to_have_count(variants, timeout=GENERATION_TIMEOUT)
    return int(GENERATION_URL.search(page.url).group(1))


def headline_replies():
    """A default_reply giving each chat request its own list of short headlines."""
    counter = itertools.count(1)

    def reply(_request: dict) -> str:
        n = next(counter)
        return "\n".join(line.format(n=n) for line in HEADLINES)

    return reply


def no_js_errors(page: Page) -> None:
    assert page.js_errors == [], page.js_errors


# --------------------------------------------------------------------------- A


def test_sign_up_generate_stream_favourite_history(page: Page, worker_process, fake_llm):
    """Sign up, find a template by search, generate 3 streamed variants, favourite one,
    then find the generation in History by the favourites filter and by search."""
    sign_up(page, "ada@example.com")
    expect(page.locator(".flash-success")).to_contain_text("Welcome to Copydeck")
    expect(page.locator(QUOTA)).to_have_text("20")

    # The catalogue search swaps the grid in place (htmx), without a page load.
    page.evaluate("window.__samePage = true")
    grid = page.locator("#template-grid")
    expect(grid.locator("[data-slug=product-description]")).to_be_visible()
    page.fill("input[name=q]", "google")
    expect(grid.locator("[data-slug=product-description]")).to_have_count(0)
    card = grid.locator("[data-slug=google-ads-headlines]")
    expect(card).to_contain_text("Google Ads headlines")
    expect(page).to_have_url(re.compile(r"/templates\?q=google(&|$)"))
    assert page.evaluate("window.__samePage") is True, "the search reloaded the page"

    card.click()
    expect(page).to_have_url(re.compile(r"/write/google-ads-headlines$"))
    expect(page.locator("h1")).to_contain_text("Google Ads headlines")
    inputs = {
        "f_product": "Juniper stoneware mugs",
        "f_benefits": "Handmade in Portugal, matte sage glaze, dishwasher safe",
        "f_keywords": "handmade mug, ceramic mug",
        "f_audience": "Slow-morning coffee lovers",
    }
    fill_generate_form(page, inputs, variants=3)

    # Slow the fake down so that the tokens visibly stream in.
    fake_llm.ttft = 0.3
    fake_llm.token_delay = 0.05
    fake_llm.default_reply = headline_replies()
    page.click("#generate-form button[type=submit]")
    expect(page).to_have_url(GENERATION_URL)
    expect(page.locator("aside.inputs")).to_contain_text("Juniper stoneware mugs")

    probe = page.wait_for_function(STREAMING_PROBE, polling="raf", timeout=GENERATION_TIMEOUT).json_value()
    assert probe["final"] is False, "the final variants appeared before any streamed token was shown"
    partial = [text for text in probe["live"] if text.strip()]

    cards = page.locator(FINAL_CARDS)
    expect(cards).to_have_count(3, timeout=GENERATION_TIMEOUT)
    expect(page.locator(".variant.live")).to_have_count(0)
    finals = [text.strip() for text in cards.locator("[data-role=text]").all_text_contents()]
    assert all(text.startswith("Copy that sells itself") for text in finals), finals
    assert len(set(finals)) == 3, finals
    # What was on screen mid-stream was the beginning of a variant, not all of it.
    for text in partial:
        assert any(final.startswith(text.strip()) and len(text.strip()) < len(final) for final in finals), (
            text, finals)
    expect(page.locator(QUOTA)).to_have_text("17")

    second = cards.nth(1)
    variant_id = second.get_attribute("data-variant-id")
    favourite_text = second.locator("[data-role=text]").text_content().strip()
    button = page.locator(f"#variant-{variant_id} [data-action=favourite]")
    expect(button).to_have_attribute("aria-pressed", "false")
    button.click()
    expect(button).to_have_attribute("aria-pressed", "true")
    expect(page.locator(f"#variant-{variant_id}")).to_have_class(re.compile(r"\bfavourite\b"))
    expect(page.locator("[data-action=favourite][aria-pressed=true]")).to_have_count(1)

    page.click("nav.mainnav >> text=History")
    expect(page).to_have_url(re.compile(r"/history$"))
    items = page.locator("#history-list .history-item")
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("Google Ads headlines")
    expect(items.first.locator("blockquote")).to_have_count(2)  # the first two variants

    page.check("input[name=favourites]")
    expect(page).to_have_url(re.compile(r"favourites=1"))
    expect(items).to_have_count(1)
    snippets = items.first.locator("blockquote.variant-snippet")
    expect(snippets).to_have_count(1)
    expect(snippets.first).to_have_class(re.compile(r"\bfavourite\b"))
    expect(snippets.first).to_contain_text(" ".join(favourite_text.split()))

    page.fill("input[name=q]", "juniper")
    expect(page).to_have_url(re.compile(r"q=juniper"))
    expect(items).to_have_count(1)
    expect(items.first.locator(".snippet")).to_contain_text("Juniper stoneware mugs")

    page.fill("input[name=q]", "xylophonequark")
    expect(page).to_have_url(re.compile(r"q=xylophonequark"))
    expect(items).to_have_count(0)
    expect(page.locator("#history-list .empty")).to_contain_text("Nothing matches these filters")
    no_js_errors(page)


# --------------------------------------------------------------------------- B


def test_edit_rate_delete_copy_and_more_like_this(page: Page, worker_process, fake_llm):
    """Inline edit (persists), thumbs up, delete with confirm, copy, More like this."""
    # The fake's built-in reply echoes 40 characters of the prompt, cutting "at most 1000" to "100",
    # which the claims check (app/checks) rightly repairs; this journey is about the card's actions.
    lines = itertools.cycle(("Thrown on the wheel in Porto.", "Glazed in sage, made for slow mornings.",
                             "A mug that keeps your coffee company."))
    fake_llm.default_reply = lambda _request: next(lines)
    sign_up(page, "grace@example.com")
    first_id = generate(page, "product-description",
                        {"f_product": "Juniper mug", "f_features": "Handmade, sage glaze"}, variants=3)
    cards = page.locator(FINAL_CARDS)
    v1, v2, v3 = (cards.nth(i).get_attribute("data-variant-id") for i in range(3))

    # Edit inline.
    page.click(f"#variant-{v1} [data-action=edit]")
    editor = page.locator(f"#variant-{v1} textarea[name=text]")
    expect(editor).to_be_visible()
    new_text = "Thrown by hand in Porto. Your slow mornings deserve it."
    editor.fill(new_text)
    page.click(f"#variant-{v1} button:has-text('Save')")
    expect(page.locator(f"#variant-{v1} textarea")).to_have_count(0)
    expect(page.locator(f"#variant-{v1} [data-role=text]")).to_have_text(new_text)
    expect(page.locator(f"#variant-{v1} .badge")).to_have_text("Edited")

    # Thumbs up.
    up = page.locator(f"#variant-{v1} [data-action=rate-up]")
    up.click()
    expect(up).to_have_attribute("aria-pressed", "true")
    expect(page.locator(f"#variant-{v1} [data-action=rate-down]")).to_have_attribute("aria-pressed", "false")

    # Delete, accepting the confirm dialog.
    dialogs: list[str] = []

    def accept(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.click(f"#variant-{v3} [data-action=delete]")
    expect(page.locator(f"#variant-{v3}")).to_have_count(0)
    expect(cards).to_have_count(2)
    assert dialogs and "Delete this variant" in dialogs[0], dialogs

    # All three changes are stored.
    page.reload()
    expect(cards).to_have_count(2)
    expect(page.locator(f"#variant-{v3}")).to_have_count(0)
    expect(page.locator(f"#variant-{v1} [data-role=text]")).to_have_text(new_text)
    expect(page.locator(f"#variant-{v1} .badge")).to_have_text("Edited")
    expect(page.locator(f"#variant-{v1} [data-action=rate-up]")).to_have_attribute("aria-pressed", "true")

    # Copy to clipboard.
    v2_text = page.locator(f"#variant-{v2} [data-role=text]").text_content()
    copy = page.locator(f"#variant-{v2} [data-copy]")
    copy.click()
    expect(copy).to_contain_text("Copied!")
    if page.evaluate("!!(navigator.clipboard && window.isSecureContext)"):
        assert page.evaluate("navigator.clipboard.readText()") == v2_text

    # More like this: a new generation seeded from variant 2.
    expect(page.locator(QUOTA)).to_have_text("17")
    page.click(f"#variant-{v2} [data-action=more]")
    first_url = page.url
    page.wait_for_url(lambda url: url != first_url and GENERATION_URL.search(url) is not None)
    second_id = int(GENERATION_URL.search(page.url).group(1))
    assert second_id != first_id
    expect(page.locator("aside.inputs")).to_contain_text("More like a variant you picked")
    expect(cards).to_have_count(3, timeout=GENERATION_TIMEOUT)
    expect(page.locator(QUOTA)).to_have_text("14")
    prompt = fake_llm.chat_requests[-1]["json"]["messages"][-1]["content"]
    assert v2_text.strip() in prompt
    no_js_errors(page)


# --------------------------------------------------------------------------- C


def test_model_output_is_shown_as_text_never_as_html(page: Page, worker_process, fake_llm):
    """HTML in the model's reply (and in the inputs) is displayed literally, while
    streaming and after the final render; no injected handler runs."""
    payload = '<b>bold</b> <img src=x onerror="window.__xss=1">'
    fake_llm.default_reply = lambda _request: payload
    fake_llm.ttft = 0.3
    fake_llm.token_delay = 0.15
    sign_up(page, "mallory@example.com")
    page.goto("/write/product-description")
    fill_generate_form(page, {"f_product": "<script>window.__xss=2</script>Mug",
                              "f_features": '<img src=y onerror="window.__xss=3">'}, variants=1)
    page.click("#generate-form button[type=submit]")
    expect(page).to_have_url(GENERATION_URL)

    probe = page.wait_for_function(STREAMING_PROBE, polling="raf", timeout=GENERATION_TIMEOUT).json_value()
    assert probe["final"] is False, "no streamed text was seen before the final render"
    # The first token is "<b>bold</b>": shown literally, not as a <b> element.
    assert probe["live"][0].startswith("<b>bold</b>"), probe
    assert page.locator("#results b, #results img").count() == 0
    assert page.evaluate("window.__xss") is None

    text = page.locator(f"{FINAL_CARDS} [data-role=text]")
    expect(text).to_have_text(payload, timeout=GENERATION_TIMEOUT)
    expect(page.locator("aside.inputs")).to_contain_text("<script>window.__xss=2</script>Mug")
    expect(page.locator("aside.inputs")).to_contain_text('<img src=y onerror="window.__xss=3">')
    # No <img> exists, so no onerror can ever fire; the flag proves none ran while streaming either.
    assert page.locator("main b, main img, main script").count() == 0
    assert page.evaluate("window.__xss") is None

    page.goto("/history")
    expect(page.locator(".variant-snippet")).to_have_text(payload)
    assert page.locator("main b, main img, main script").count() == 0
    assert page.evaluate("window.__xss") is None
    no_js_errors(page)


# --------------------------------------------------------------------------- D


def test_failed_generation_shows_message_and_refunds_quota(app, page: Page, worker_process, fake_llm):
    attempts = app.config["LLM_MAX_ATTEMPTS"]
    fake_llm.script(*[error(500)] * attempts)
    sign_up(page, "linus@example.com")
    expect(page.locator(QUOTA)).to_have_text("20")
    page.goto("/write/product-description")
    fill_generate_form(page, {}, variants=1)
    page.click("#generate-form button[type=submit]")
    expect(page).to_have_url(GENERATION_URL)

    failed = page.locator("[data-testid=generation-failed]")
    expect(failed).to_be_visible(timeout=GENERATION_TIMEOUT)
    expect(failed).to_contain_text("Your quota was not used")
    expect(page.locator(FINAL_CARDS)).to_have_count(0)
    expect(page.locator(QUOTA)).to_have_text("20")
    assert len(fake_llm.chat_requests) == attempts
    assert fake_llm.script_remaining == 0

    page.reload()  # the refund is stored, not just shown
    expect(page.locator("[data-testid=generation-failed]")).to_be_visible()
    expect(page.locator(QUOTA)).to_have_text("20")
    no_js_errors(page)


# --------------------------------------------------------------------------- password reset


def _reset_link(outbox: Path, address: str) -> str:
    for path in sorted(outbox.glob("*.eml"), reverse=True):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == address:
            body = message.get_body(("plain",)).get_content()
            match = re.search(r"https?://\S+/reset/\S+", body)
            assert match, body
            return match.group(0)
    raise AssertionError(f"no email to {address} in {outbox}")


def test_password_reset(page: Page, base_env, live_server):
    address = "reset-me@example.com"
    sign_up(page, address, "old-password-123")
    page.click("header form button:has-text('Log out')")
    expect(page).to_have_url(re.compile(r"/login$"))

    page.goto("/forgot")
    page.fill("input[name=email]", address)
    page.click("form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.locator(".flash-info")).to_contain_text("we have sent a link")

    link = _reset_link(Path(base_env["MAIL_OUTBOX"]), address)
    assert link.startswith(live_server + "/reset/"), link
    page.goto(link)
    expect(page.locator("h1")).to_have_text("Choose a new password")
    page.fill("input[name=password]", "new-password-456")
    page.fill("input[name=confirm]", "new-password-456")
    page.click("form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.locator(".flash-success")).to_contain_text("Your password is changed")

    log_in(page, address, "old-password-123")
    expect(page.locator(".field .error")).to_contain_text("Wrong email or password")
    log_in(page, address, "new-password-456")
    expect(page).to_have_url(re.compile(r"/templates$"))
    expect(page.locator(".user-email")).to_have_text(address)

    page.goto(link)
    expect(page).to_have_url(re.compile(r"/forgot$"))
    expect(page.locator(".flash-error")).to_contain_text("already been used")
    no_js_errors(page)
