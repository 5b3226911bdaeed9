"""The envelope line of a queue file: read back as written, old files without the later fields
still readable, and the return path of each recipient's delivery."""

from __future__ import annotations

import json

from relay.rewrite.verp import VerpAddress, parse_verp
from relay.spool.records import Envelope

ENVELOPE = Envelope(
    queue_id="0660E78CB164E8052743BB",
    mail_from="news@shop.example",
    recipients=("ann@dest.example", "bob@dest.example"),
    received_at=1767225600.5,
    verp_domain="bounces.shop.example",
)


def test_an_envelope_is_read_back_as_written():
    assert Envelope.from_json(ENVELOPE.to_json()) == ENVELOPE


def test_a_queue_file_written_before_verp_is_read_without_it():
    fields = json.loads(ENVELOPE.to_json())
    del fields["verp_domain"]
    old = Envelope.from_json(json.dumps(fields).encode())
    assert old.verp_domain is None
    assert old.return_path("ann@dest.example") == "news@shop.example"


def test_each_recipient_has_its_own_verp_return_path():
    paths = {recipient: ENVELOPE.return_path(recipient) for recipient in ENVELOPE.recipients}
    assert paths["ann@dest.example"] == (
        "bounce+0660E78CB164E8052743BB=ann=dest.example@bounces.shop.example"
    )
    for recipient, path in paths.items():
        assert parse_verp(path) == VerpAddress(ENVELOPE.queue_id, recipient, None)


def test_the_null_reverse_path_stays_null():
    dsn = Envelope("0660E78CB164E8052743BC", "", ("news@shop.example",), 0.0, verp_domain="b.x")
    assert dsn.return_path("news@shop.example") == ""
