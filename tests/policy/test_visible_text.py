"""What the policy stage reads of an HTML part is what a reader sees."""

from __future__ import annotations

import email
import email.policy

from relay.policy.inspect import text_parts


def html_message(html: str):
    raw = (
        "From: a@shop.example\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n" + html
    ).encode()
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_unclosed_head_ends_at_body():
    (part,) = text_parts(html_message("<html><head><title>Sale<body><p>Unsubscribe here</p>"))
    assert "Unsubscribe here" in part.text
    assert "Sale" not in part.text


def test_script_and_style_stay_invisible():
    (part,) = text_parts(
        html_message("<body><style>p{}</style><script>x=1</script><p>Visible</p></body>")
    )
    assert part.text.split() == ["Visible"]
