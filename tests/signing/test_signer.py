"""What relay signs (RFC-DKIM-HEADERS, RFC-LUP-DKIM, RFC-DKIM-ALG), for which domain, and what
it does with messages it cannot sign."""

from __future__ import annotations

import re

import dkim.util
import pytest

from relay.errors import RelayError, SigningError
from relay.signing import SignedBy, Signer
from relay.signing.signer import header_list
from tests.signing.conftest import KeySet
from tests.signing.messages import html_alternative, plain_text


def signature_tags(content: bytes) -> list[dict[bytes, bytes]]:
    fields = re.findall(rb"^DKIM-Signature:(.*?\r\n)(?=\S)", content, re.M | re.S)
    return [dkim.util.parse_tag_value(field) for field in fields]


def h_tag(tags: dict[bytes, bytes]) -> list[str]:
    return [name.strip().decode() for name in tags[b"h"].split(b":")]


def test_header_list_for_a_bulk_message_with_one_click_unsubscribe():
    present = [
        b"received", b"from", b"to", b"subject", b"date", b"message-id", b"list-unsubscribe",
        b"list-unsubscribe-post", b"mime-version", b"content-type", b"feedback-id", b"x-mailer",
        b"cfbl-address", b"reply-to", b"bcc", b"return-path",
    ]  # fmt: skip
    assert [name.decode() for name in header_list(present)] == [
        "from", "from",
        "reply-to", "reply-to",
        "subject", "subject",
        "date", "date",
        "to", "to",
        "list-unsubscribe", "list-unsubscribe",
        "list-unsubscribe-post", "list-unsubscribe-post",
        "message-id",
        "mime-version",
        "content-type",
        "cfbl-address",
        "feedback-id",
    ]  # fmt: skip


def test_absent_from_subject_and_unsubscribe_fields_are_still_covered():
    assert [name.decode() for name in header_list([b"from", b"received", b"received"])] == [
        "from", "from", "subject", "list-unsubscribe", "list-unsubscribe-post",
    ]  # fmt: skip


def test_repeated_fields_are_all_signed_and_one_more():
    include = header_list([b"from", b"resent-from", b"resent-from", b"to", b"cc", b"cc"])
    assert include.count(b"resent-from") == 2
    assert include.count(b"cc") == 2  # not oversigned
    assert include.count(b"to") == 2


def test_signed_message(rsa_and_ed25519: KeySet):
    message = html_alternative()

    result = Signer(rsa_and_ed25519.keyring).sign(message, now=1741078800)

    assert result.signed
    assert result.unsigned_reason is None
    assert result.signed_by == (
        SignedBy("shop.example", "rsa2025", "rsa-sha256"),
        SignedBy("shop.example", "ed2025", "ed25519-sha256"),
    )
    assert result.content.endswith(message)  # nothing of the message itself changes
    rsa_tags, ed_tags = signature_tags(result.content)
    assert result.content.count(b"DKIM-Signature:") == 2
    assert (rsa_tags[b"a"], ed_tags[b"a"]) == (b"rsa-sha256", b"ed25519-sha256")
    for tags in (rsa_tags, ed_tags):
        assert tags[b"c"] == b"relaxed/relaxed"
        assert tags[b"d"] == b"shop.example"
        assert tags[b"t"] == b"1741078800"
        assert b"l" not in tags  # no body length limit: appended content must break it
    assert rsa_tags[b"bh"] == ed_tags[b"bh"]
    assert h_tag(rsa_tags) == h_tag(ed_tags)
    assert h_tag(rsa_tags).count("list-unsubscribe") == 2
    assert h_tag(rsa_tags).count("list-unsubscribe-post") == 2
    assert {"cfbl-address", "feedback-id", "reply-to"} <= set(h_tag(rsa_tags))
    for line in result.content[: result.content.index(message)].split(b"\r\n"):
        assert len(line) <= 78


@pytest.mark.parametrize(
    "from_field",
    [
        b"From: news@shop.example",
        b"From: Shop <NEWS@Shop.EXAMPLE>",
        b'From: "Shop, the @ best" <news@shop.example>',
        b"From: =?utf-8?q?Sh=C3=B6p?= <news@shop.example.>",
        b"From: news@shop.example (comment @ evil.example)",
        b"From:\r\n  Shop\r\n  <news@shop.example>",
        b"fROM: a@shop.example, b@shop.example",
        b"From: news@news.shop.example",  # a subdomain: the parent's key (relaxed alignment)
    ],
)
def test_signing_domain_is_the_from_domain_or_its_parent_with_a_key(rsa_only: KeySet, from_field):
    message = from_field + b"\r\nSubject: x\r\n\r\nbody\r\n"
    result = Signer(rsa_only.keyring).sign(message)
    assert [s.domain for s in result.signed_by] == ["shop.example"]


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"Subject: x\r\n\r\nbody\r\n", "no From header field"),
        (
            b"From: a@shop.example\r\nFrom: b@shop.example\r\n\r\nbody\r\n",
            "2 From header fields",
        ),
        (b"From: undisclosed-recipients:;\r\n\r\nbody\r\n", "no address in From"),
        (b"From: news\r\n\r\nbody\r\n", "From address without a domain: 'news'"),
        (
            b"From: a@shop.example, b@bank.example\r\n\r\nbody\r\n",
            "From has mailboxes in several domains: bank.example, shop.example",
        ),
        (b"From: a@other.example\r\n\r\nbody\r\n", "no DKIM key for other.example"),
        (b"From: a@shopping.example\r\n\r\nbody\r\n", "no DKIM key for shopping.example"),
    ],
)
def test_unsigned_with_the_reason(rsa_only: KeySet, message, reason):
    result = Signer(rsa_only.keyring).sign(message)
    assert not result.signed
    assert result.content is message
    assert result.unsigned_reason is not None
    assert result.unsigned_reason.startswith(reason)


@pytest.mark.parametrize(
    "message",
    [
        b"From: a@shop.example\r\nnot a header field\r\n\r\nbody\r\n",
        b" folded first line\r\nFrom: a@shop.example\r\n\r\nbody\r\n",
    ],
)
def test_unparsable_header_section_raises_signing_error(rsa_only: KeySet, message):
    with pytest.raises(SigningError, match="cannot sign") as caught:
        Signer(rsa_only.keyring).sign(message)
    assert isinstance(caught.value, RelayError)


def test_lf_message_gets_lf_signature_fields(rsa_only: KeySet):
    message = plain_text().replace(b"\r\n", b"\n")
    result = Signer(rsa_only.keyring).sign(message)
    assert result.signed
    assert b"\r" not in result.content
