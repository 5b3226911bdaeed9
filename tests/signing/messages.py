"""The messages the signing tests sign: what relay sends, as it arrives over SMTP (CRLF)."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage

FROM = '"Shop Example" <news@shop.example>'
UNSUBSCRIBE = {
    "List-Unsubscribe": "<https://shop.example/u/t0ken>, <mailto:unsub@shop.example?subject=u>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
}


def _base(subject: str, unsubscribe: bool) -> EmailMessage:
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = FROM
    message["To"] = "Customer <customer@example.org>"
    message["Subject"] = subject
    message["Date"] = "Tue, 04 Mar 2025 09:00:00 +0000"
    message["Message-ID"] = "<20250304090000.1@shop.example>"
    if unsubscribe:
        for name, value in UNSUBSCRIBE.items():
            message[name] = value
    return message


def plain_text(unsubscribe: bool = True) -> bytes:
    message = _base("Your March offers", unsubscribe)
    message.set_content(
        "Hello,\n\nour   spring sale starts today.\t20% off.  \n\n-- \nShop Example\n\n\n"
    )
    return message.as_bytes()


def html_alternative(unsubscribe: bool = True) -> bytes:
    message = _base("Spring collection", unsubscribe)
    message["Reply-To"] = "Shop Service <service@shop.example>"
    message["CFBL-Address"] = "fbl@shop.example; report=arf"
    message["Feedback-ID"] = "spring:newsletter:shop:esp"
    message.set_content("Spring collection: https://shop.example/spring\n")
    rows = "".join(
        f'  <tr>\n    <td style="padding: 8px">Item {n}</td>\n    <td>{n}.99 EUR</td>\n  </tr>\n'
        for n in range(40)
    )
    message.add_alternative(
        f"<html>\n<body>\n<table>\n{rows}</table>\n"
        '<p><a href="https://shop.example/u/t0ken">Unsubscribe</a></p>\n</body>\n</html>\n',
        subtype="html",
    )
    return message.as_bytes()


def utf8_8bit(unsubscribe: bool = True) -> bytes:
    message = _base("Angebote der Woche", unsubscribe)
    message.set_content(
        "Grüße aus Zürich! Größen: XS\u2013XL, Preis 19,99 €.\n中文内容也可以。\n", cte="8bit"
    )
    return message.as_bytes()


def encoded_subject(unsubscribe: bool = True) -> bytes:
    message = _base(
        "Ünïcödé Sübjéct \u2013 【广告】 春季促销 with a long enough text to fold", unsubscribe
    )
    message.set_content("The subject is RFC 2047 encoded and folded.\n")
    return message.as_bytes()


MESSAGES = {
    "plain": plain_text,
    "html-alternative": html_alternative,
    "utf8-8bit": utf8_8bit,
    "rfc2047-subject": encoded_subject,
}
