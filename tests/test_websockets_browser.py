"""The WebSockets lab's browser client (static/chat.js) in headless Chromium, against the lab."""

from __future__ import annotations

import pytest

from labsupport import chat

TIMEOUT_MS = 5000


@pytest.fixture(scope="module")
def server():
    with chat.start(name="websockets-browser") as handle:
        yield handle


def open_page(browser, server, user_id, room="general"):
    page = browser.new_page()
    page.goto(f"{server.url}/?token={server.token_for(user_id)}&room={room}")
    wait_for_text(page, "#status", "connected")
    return page


def wait_for_text(page, selector, text):
    """Wait for ``text`` in ``selector`` (locators, not wait_for_function: the page's CSP
    forbids the eval that a string predicate needs)."""
    page.locator(selector, has_text=text).first.wait_for(timeout=TIMEOUT_MS)


def lines(page):
    return page.locator("#messages li").all_text_contents()


def wait_for_line(page, text):
    wait_for_text(page, "#messages li", text)


def test_two_browsers_chat_type_join_and_leave(browser, server):
    ada = open_page(browser, server, 101)
    wait_for_text(ada, "#status", "connected as Ada Lovelace")
    wait_for_line(ada, "Ada Lovelace joined the room")
    alan = open_page(browser, server, 102)
    wait_for_line(ada, "Alan Turing joined the room")

    alan.fill("#message", "Hello everyone!")  # an input event: typing starts
    wait_for_text(ada, "#typing", "Alan Turing is typing…")
    alan.press("#message", "Enter")
    wait_for_line(ada, "Alan Turing: Hello everyone!")
    wait_for_line(alan, "Alan Turing: Hello everyone!")
    assert ada.text_content("#typing") == "", "typing stops when the message is sent"
    assert alan.text_content("#typing") == "", "nobody sees their own typing indicator"

    alan.close()
    wait_for_line(ada, "Alan Turing left the room")
    ada.close()


def test_markup_in_a_message_is_shown_as_text(browser, server):
    ada = open_page(browser, server, 101, room="xss")
    attack = '<img src=x onerror="document.title=\'pwned\'">'
    ada.fill("#message", attack)
    ada.press("#message", "Enter")
    wait_for_line(ada, "Ada Lovelace: <img")
    assert f"Ada Lovelace: {attack}" in lines(ada)
    assert ada.locator("#messages img").count() == 0
    assert ada.title() != "pwned"
    ada.close()


def test_a_page_without_a_token_is_refused(browser, server):
    page = browser.new_page()
    page.goto(f"{server.url}/?room=general")
    wait_for_text(page, "#status", "closed")
    assert page.text_content("#status") == "closed (1006)", "a refused handshake is a 1006"
    page.close()
