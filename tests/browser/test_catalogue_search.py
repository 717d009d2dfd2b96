"""Searching the catalogue in a real browser against the live server, on SQLite and on PostgreSQL: a
visitor mistypes a model by one character, finds nothing, follows "did you mean" (您是不是要找：) to the
model and finds the instrument; one who types a manufacturer's English name finds it under its Chinese
name. The live database is shared and committed, so the instruments here have models of their own."""
from __future__ import annotations

import random
import re
from urllib.parse import quote_plus

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_booking_flow import published_instrument

pytestmark = pytest.mark.live


def search_for(page: Page, url: str, query: str, *, sort: str = "relevance") -> None:
    page.goto(f"{url}/catalogue")
    form = page.get_by_test_id("catalogue-search")
    form.locator("#q").fill(query)
    form.locator("#sort").select_option(sort)
    form.locator("button[type=submit]").click()


def test_a_model_mistyped_by_one_character_offers_did_you_mean_and_its_link_finds_the_instrument(
        page, live_server, live_session):
    url = live_server.url
    number = random.randrange(1000, 9999)
    model = f"Orvexa {number}"
    instrument_id = published_instrument(live_session, model=model)
    typo = f"Orvexa {number // 10}{(number % 10 + 1) % 10}"  # the last digit one off

    search_for(page, url, typo)
    expect(page.get_by_test_id("no-results")).to_be_visible()
    hint = page.get_by_test_id("did-you-mean")
    expect(hint).to_contain_text("您是不是要找：")
    hint.get_by_role("link", name=model).click()

    expect(page).to_have_url(re.compile(rf"/catalogue\?.*q={re.escape(quote_plus(model))}"))
    expect(page.locator("#q")).to_have_value(model)
    expect(page.locator(f'[data-testid=instrument-card][data-instrument-id="{instrument_id}"]')).to_be_visible()
    expect(page.get_by_test_id("did-you-mean")).to_have_count(0)


def test_a_manufacturers_english_name_finds_it_under_its_chinese_name(page, live_server, live_session):
    url = live_server.url
    instrument_id = published_instrument(live_session, manufacturer="蔡司", model=f"Axio {random.randrange(10**6)}")
    search_for(page, url, "Zeiss", sort="newest")  # the shared database may hold other ZEISS instruments
    card = page.locator(f'[data-testid=instrument-card][data-instrument-id="{instrument_id}"]')
    expect(card).to_be_visible()
    expect(card).to_contain_text("蔡司")
