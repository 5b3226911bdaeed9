"""The public one-click unsubscribe endpoint of a running relay, over real HTTP (RFC 8058):
POST suppresses and answers 200 without redirect or cookie; GET only shows the page whose
button POSTs; a token that does not verify, or a POST without the one-click field, changes
nothing."""

from __future__ import annotations

import re
from datetime import date, timedelta

import httpx
import pytest

from tests.api.conftest import ONE_CLICK, RECIPIENT, SENDER_ID


def assert_plain_refusal(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert "Traceback" not in response.text


def test_get_shows_a_form_that_posts_one_click_and_unsubscribes_nobody(unsubscribing):
    url = unsubscribing.url(list_id="<b>weekly</b>")
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "set-cookie" not in response.headers
    page = response.text
    path = url.removeprefix(unsubscribing.relay.http_url)
    assert f'<form method="post" action="{path}">' in page
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in page
    assert "&lt;b&gt;weekly&lt;/b&gt;" in page
    assert "<b>" not in page
    assert not re.search(r"(src|href)=", page)  # nothing fetched from elsewhere
    assert unsubscribing.suppression(list_id="<b>weekly</b>") is None
    assert unsubscribing.audit() == []


def test_one_click_post_suppresses_the_list_and_is_idempotent(unsubscribing):
    url = unsubscribing.url()
    for _ in range(2):
        response = httpx.post(url, data=ONE_CLICK)
        assert response.status_code == 200, response.text
        assert "set-cookie" not in response.headers
        assert "location" not in response.headers
    entry = unsubscribing.suppression()
    assert entry is not None
    assert entry["reason"] == "unsubscribe_one_click"
    assert entry["source"] == "one-click"
    assert (entry["scope"], entry["list_id"]) == ("sender+list", "weekly")
    assert unsubscribing.suppression(list_id="offers") is None
    first, _ = unsubscribing.audit()
    assert (first["action"], first["sender_id"]) == ("suppress", SENDER_ID)
    assert first["recipient_hash"] == unsubscribing.hasher.hash(RECIPIENT)
    assert first["inputs"] == {
        "scope": "sender+list",
        "list_id": "weekly",
        "token_issued": date.today().isoformat(),
        "client": "127.0.0.1",
    }
    assert "one-click" in first["detail"]


def test_multipart_post_without_list_suppresses_all_mail_of_the_sender(unsubscribing):
    """RFC 8058 §3.1: the body SHOULD be multipart/form-data."""
    response = httpx.post(
        unsubscribing.url(list_id=None), files={"List-Unsubscribe": (None, "One-Click")}
    )
    assert response.status_code == 200, response.text
    entry = unsubscribing.suppression(list_id="any-list")
    assert entry is not None
    assert entry["scope"] == "sender"


def test_token_keeps_working_long_after_it_was_issued(unsubscribing):
    """CA-UNSUB-60D: an unsubscribe mechanism must work for at least 60 days."""
    url = unsubscribing.url(issued=date.today() - timedelta(days=400))
    assert httpx.post(url, data=ONE_CLICK).status_code == 200
    assert unsubscribing.suppression() is not None


def flipped(url: str) -> str:
    """`url` with one character of the token's MAC changed."""
    return url[:-1] + ("A" if url[-1] != "A" else "B")


@pytest.mark.parametrize(
    "forge",
    [
        flipped,
        lambda url: url + "x",
        lambda url: url.rsplit(".", 1)[0],
        lambda url: url + "A" * 2000,
    ],
    ids=["flipped", "appended", "no-mac", "oversize"],
)
def test_bad_token_is_refused_and_nothing_recorded(unsubscribing, forge):
    url = forge(unsubscribing.url())
    assert_plain_refusal(httpx.post(url, data=ONE_CLICK), 400)
    assert_plain_refusal(httpx.get(url), 400)
    assert unsubscribing.suppression() is None
    assert unsubscribing.audit() == []


@pytest.mark.parametrize(
    "body",
    [{}, {"data": {"List-Unsubscribe": "Yes"}}, {"content": b"List-Unsubscribe=One-Click"}],
    ids=["empty", "other-value", "not-a-form"],
)
def test_post_without_the_one_click_field_is_refused(unsubscribing, body):
    response = httpx.post(unsubscribing.url(), **body)
    assert_plain_refusal(response, 400)
    assert "List-Unsubscribe=One-Click" in response.text
    assert unsubscribing.suppression() is None
    assert unsubscribing.audit() == []


def test_oversize_body_is_refused(unsubscribing):
    body = b"List-Unsubscribe=One-Click&padding=" + b"x" * 100_000
    response = httpx.post(
        unsubscribing.url(),
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_plain_refusal(response, 413)
    assert unsubscribing.suppression() is None


def test_relay_stops_cleanly_after_serving_http(unsubscribing):
    assert httpx.post(unsubscribing.url(), data=ONE_CLICK).status_code == 200
    relay = unsubscribing.relay
    relay.stop()
    assert "relay stopped" in relay.log
    relay.assert_no_traceback()
