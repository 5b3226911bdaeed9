"""Mailbox-provider sender requirements: Gmail, Yahoo, Microsoft (COMPLIANCE §7).

The suppression rule MBP-UNSUB-48H lives in common.py; MBP-RFC5322 is the RFC-5322-* rules of
protocol.py. MBP-SPF-PASS, MBP-DKIM-ALIGNED and MBP-DMARC-RECORD read the sender domain's
readiness (relay.dnscheck, the checks of `relay dns-check`) that the checkpoint gathers for
them. Not here yet: MBP-FCRDNS and MBP-TLS-OUT belong to the delivery stage, the DMARC half of
MBP-NO-FOREIGN-FROM needs DNS, MBP-IDN-CONFUSABLE needs the UTS #39 data and MBP-DKIM-KEY is
checked when a key is imported, not per message. MBP-COMPLAINT-RATE reads the sender's standing
(relay.policy.standing: its pause and complaint rates) that the checkpoint gathers at MAIL.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import timedelta
from email.message import Message
from email.utils import getaddresses
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from relay.policy import inspect
from relay.policy.context import MessageContext
from relay.policy.model import Finding, Stage
from relay.policy.rules import Fact, rule
from relay.policy.rules.cadence import Period, period_text
from relay.stores.models import MessageClass
from relay.stores.stats import COMPLAINT_PAUSE, COMPLAINT_WARN

if TYPE_CHECKING:
    from relay.dnscheck.model import Check
    from relay.policy.files import Policy

__all__ = ["COMPLAINT_RATE", "complaint_rate_params"]

COMPLAINT_RATE = "MBP-COMPLAINT-RATE"

_MAX_PARTS = 200
_SAMPLES = 5  # hidden snippets, links, markers kept in a finding's inputs


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _excerpt(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _related(domain: str, other: str) -> bool:
    """One domain is the other or below it (news.shop.example and shop.example)."""
    return inspect.within(domain, [other], subdomains=True) or inspect.within(
        other, [domain], subdomains=True
    )


# --- MBP-ONECLICK -------------------------------------------------------------------------


@rule("MBP-ONECLICK", Stage.DATA)
def one_click(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """Commercial mail offers one-click unsubscribe: List-Unsubscribe with an https URI and
    `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058)."""
    message = context.message
    if message is None or not context.commercial:
        return []
    uris = inspect.list_unsubscribe(message)
    posts = [value.strip() for value in inspect.header_values(message, "List-Unsubscribe-Post")]
    problems: list[str] = []
    if not uris:
        problems.append("no List-Unsubscribe URI")
    elif not any(uri.lower().startswith("https://") for uri in uris):
        problems.append("no https URI in List-Unsubscribe (mailto alone is not one-click)")
    if inspect.ONE_CLICK not in posts:
        problems.append(f"no 'List-Unsubscribe-Post: {inspect.ONE_CLICK}'")
    if not problems:
        return []
    return [
        Finding(
            "commercial mail without one-click unsubscribe: " + "; ".join(problems),
            {"problems": problems, "list_unsubscribe": uris, "list_unsubscribe_post": posts},
        )
    ]


# --- MBP-BODY-UNSUB -----------------------------------------------------------------------

_URL = re.compile(r"(?:https?://|mailto:)\S+", re.IGNORECASE)


def _plain_text_link(part: inspect.TextPart) -> bool:
    """Opt-out wording with a URL on the same or the next line ("To unsubscribe, visit:")."""
    lines = part.lines
    return any(_URL.search("\n".join(lines[index : index + 2])) for index in part.unsubscribe_lines)


@rule("MBP-BODY-UNSUB", Stage.DATA)
def body_unsubscribe(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """Commercial mail shows an unsubscribe link in the body, in every text alternative."""
    if context.message is None or not context.commercial:
        return []
    parts = inspect.text_parts(context.message)
    if not parts:
        return [
            Finding(
                "commercial mail without a text part to carry an unsubscribe link",
                {"parts": [], "without_link": []},
            )
        ]
    missing = [
        part.content_type
        for part in parts
        if not inspect.mentions_unsubscribe(part, link_required=True)
        and not (part.content_type == "text/plain" and _plain_text_link(part))
    ]
    if not missing:
        return []
    return [
        Finding(
            f"no visible unsubscribe link in the {', '.join(missing)} part(s)",
            {"parts": [part.content_type for part in parts], "without_link": missing},
        )
    ]


# --- MBP-FAKE-REPLY -----------------------------------------------------------------------


class FakeReplyParams(_Params):
    # Reply and forward prefixes as mail clients write them, before the colon (case-folded).
    prefixes: list[str] = [
        "re", "fw", "fwd", "aw", "wg", "sv", "vs", "vb", "tr", "rv", "antw", "doorst", "rif",
        "odp", "enc", "res", "回复", "回覆", "答复", "转发", "轉寄", "転送",
    ]  # fmt: skip


@lru_cache(maxsize=16)
def _prefix_pattern(prefixes: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(prefix) for prefix in sorted(prefixes, key=len, reverse=True))
    # An optional list tag ("[news] Re:"), the prefix, an optional count ("Re[2]:"), a colon.
    return re.compile(
        rf"^\s*(?:\[[^\]]*\]\s*)?({alternatives})\s*(?:\[\d+\]|\(\d+\))?\s*[:：]",
        re.IGNORECASE,
    )


@rule("MBP-FAKE-REPLY", Stage.DATA, params=FakeReplyParams)
def fake_reply(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """A Subject that starts with Re:/Fwd: (or a translation) belongs to a real reply or
    forward: one with In-Reply-To or References."""
    message = context.message
    if message is None:
        return []
    subject = inspect.header(message, "Subject")
    prefixes = tuple(prefix for prefix in params["prefixes"] if prefix)
    if not subject or not prefixes:
        return []
    match = _prefix_pattern(prefixes).match(subject)
    if match is None:
        return []
    if any(
        value.strip()
        for name in ("In-Reply-To", "References")
        for value in inspect.header_values(message, name)
    ):
        return []
    return [
        Finding(
            f"Subject starts with {match.group(1)!r}: but the message has no In-Reply-To or"
            " References",
            {"subject": _excerpt(subject, 200)},
        )
    ]


# --- MBP-DISPLAY-NAME ---------------------------------------------------------------------


class DisplayNameParams(_Params):
    # Words that press the reader rather than name the sender (whole words, case-folded).
    urgency_words: list[str] = [
        "urgent", "action required", "act now", "immediately", "final notice", "last chance",
        "important", "attention", "warning", "alert", "expires today", "reply now",
    ]  # fmt: skip
    # Provider names a sender's display name must not borrow (Gmail: no @gmail.com names).
    provider_names: list[str] = ["gmail.com", "googlemail.com"]


_DOMAIN = re.compile(
    r"(?<![\w.-])((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})(?![\w-])",
    re.IGNORECASE,
)
_COUNT_SUFFIX = re.compile(r"\(\s*\d+\s*\)\s*$")
# The same as an RFC 5322 comment, which the parsed value drops but mail clients may show.
_COUNT_COMMENT = re.compile(r"\(\s*\d+\s*\)\s*<([^<>]+)>")
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u2300-\u23ff\ufe0f\u200d\U000e0020-\U000e007f]"
)


def _mailboxes(message: Message | None) -> list[tuple[str, str]]:
    """(display name, address) of each From mailbox, decoded."""
    try:
        return [
            (name.strip(), address.strip().lower())
            for name, address in getaddresses(inspect.header_values(message, "From"))
            if address.strip()
        ]
    except Exception:
        return []


def _counted(message: Message | None) -> set[str]:
    """The From addresses whose raw display name ends in a "(n)" comment."""
    if message is None:
        return set()
    try:
        raw = [str(value) for key, value in message.raw_items() if key.lower() == "from"]
    except Exception:
        return set()
    return {address.strip().lower() for value in raw for address in _COUNT_COMMENT.findall(value)}


@rule("MBP-DISPLAY-NAME", Stage.DATA, params=DisplayNameParams)
def display_name(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """The From display name identifies the sender: no other address or domain, no provider
    name, no urgency words, no emoji, no "(2)" threading trick."""
    findings: list[Finding] = []
    counted = _counted(context.message)
    for name, address in _mailboxes(context.message):
        if not name:
            continue
        from_domain = inspect.domain_of(address)
        folded = name.casefold()
        problems: list[str] = []
        foreign = sorted(
            {
                domain.lower()
                for domain in _DOMAIN.findall(name)
                if not _related(domain.lower(), from_domain)
            }
        )
        if foreign:
            problems.append(f"names another domain ({', '.join(foreign)})")
        providers = [word for word in params["provider_names"] if word.casefold() in folded]
        if providers:
            problems.append(f"names a mailbox provider ({', '.join(providers)})")
        urgency = inspect.find_marker([name], params["urgency_words"])
        if urgency:
            problems.append(f"uses the urgency word {urgency!r}")
        if _EMOJI.search(name):
            problems.append("contains emoji")
        if _COUNT_SUFFIX.search(name) or address in counted:
            problems.append("ends in a '(n)' count, as if a thread")
        if problems:
            findings.append(
                Finding(
                    f"From display name {_excerpt(name)!r} {'; '.join(problems)}",
                    {"display_name": name, "from": address, "problems": problems},
                )
            )
    return findings


# --- MBP-HIDDEN-CONTENT -------------------------------------------------------------------

_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
_SKIPPED = frozenset({"head", "title", "script", "style", "template", "noscript"})
_ZERO = re.compile(r"^[+-]?0*\.?0+(?:px|pt|em|rem|ex|ch|%|vh|vw)?$")
_SHOWN_URL = re.compile(
    r"^(?:https?://)?((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})(?::\d+)?(?:[/?#]\S*)?$",
    re.IGNORECASE,
)


def _declarations(style: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for declaration in style.split(";"):
        name, _, value = declaration.partition(":")
        value = value.lower().replace("!important", "").strip()
        if name.strip() and value:
            found[name.strip().lower()] = " ".join(value.split())
    return found


def _hiding(tag: str, attrs: list[tuple[str, str | None]]) -> str | None:
    """Why an element hides its content from the reader, if it does."""
    attributes = {key.lower(): (value or "") for key, value in attrs}
    if "hidden" in attributes:
        return "hidden attribute"
    if tag == "font" and _ZERO.match(attributes.get("size", "").strip()):
        return "font size 0"
    style = _declarations(attributes.get("style", ""))
    if style.get("display") == "none":
        return "display:none"
    if style.get("visibility") in ("hidden", "collapse"):
        return "visibility:hidden"
    if _ZERO.match(style.get("font-size", "x")):
        return "font-size:0"
    if _ZERO.match(style.get("opacity", "x")):
        return "opacity:0"
    if style.get("overflow") == "hidden" and any(
        _ZERO.match(style.get(size, "x")) for size in ("height", "max-height", "width", "max-width")
    ):
        return "zero size with overflow:hidden"
    color = style.get("color")
    background = style.get("background-color") or style.get("background")
    if color and background and color == background:
        return "text colour equals background colour"
    return None


def _host(url: str) -> str | None:
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    return host.lower().rstrip(".").removeprefix("www.") if host else None


class _HiddenContent(inspect.HtmlReader):
    """Text inside hidden elements, and links whose text shows another host than they go to."""

    def __init__(self) -> None:
        self.hidden_text: list[tuple[str, str]] = []  # (why, text)
        self.misleading: list[tuple[str, str]] = []  # (shown text, href)
        # Open elements: (tag, why it or an ancestor hides its content); constant work per
        # piece of text however deep the nesting.
        self._open: list[tuple[str, str | None]] = []
        self._open_tags: Counter[str] = Counter()
        self._skipping = 0
        self._href: str | None = None
        self._link_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skipping += 1
        if tag == "a":
            self._close_link()
            self._href = next((value or "" for key, value in attrs if key == "href"), None)
            self._link_text = []
        if tag not in _VOID:
            inherited = self._open[-1][1] if self._open else None
            self._open.append((tag, inherited or _hiding(tag, attrs)))
            self._open_tags[tag] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        if tag == "a":
            self._close_link()
        if not self._open_tags[tag]:
            return  # a stray end tag closes nothing
        while self._open:  # close it and whatever was left open inside it
            closed, _ = self._open.pop()
            self._open_tags[closed] -= 1
            if closed == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._skipping or not data.strip():
            return
        why = self._open[-1][1] if self._open else None
        if why is not None:
            self.hidden_text.append((why, data))
        elif self._href is not None:
            self._link_text.append(data)

    def _close_link(self) -> None:
        if self._href is not None:
            shown = " ".join("".join(self._link_text).split())
            match = _SHOWN_URL.match(shown)
            href_host = _host(self._href)
            if (
                match
                and href_host
                and self._href.strip().lower().startswith(("http://", "https://"))
                and not _related(match.group(1).lower().removeprefix("www."), href_host)
            ):
                self.misleading.append((shown, self._href.strip()))
        self._href = None

    def close(self) -> None:
        self._close_link()


def _html_sources(message: Message | None) -> Iterator[str]:
    """The source of each text/html body part: multiparts are opened, attachments and attached
    messages are not (inspect.text_parts reads the same parts, as text)."""
    stack: list[Message] = [message] if message is not None else []
    seen = 0
    while stack and seen < _MAX_PARTS:
        part = stack.pop()
        seen += 1
        try:
            if part is not message and part.get_content_disposition() == "attachment":
                continue
            if part.get_content_maintype() == "multipart":
                children = part.get_payload()
                if isinstance(children, list):
                    stack.extend(
                        child for child in reversed(children) if isinstance(child, Message)
                    )
                continue
            if part.get_content_type() != "text/html":
                continue
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                continue
            charset = part.get_content_charset() or "utf-8"
            try:
                source = payload.decode(charset, "replace")
            except LookupError:
                source = payload.decode("utf-8", "replace")
        except Exception:  # a part the email package cannot read is no HTML to check
            continue
        yield source


@inspect.per_message
def _hiding_in(message: Message) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(why, text) of hidden text and (text, href) of misleading links in the HTML parts."""
    hidden: list[tuple[str, str]] = []
    misleading: list[tuple[str, str]] = []
    for source in _html_sources(message):
        parser = _HiddenContent()
        inspect.parse_html(parser, source)
        hidden.extend(parser.hidden_text)
        misleading.extend(parser.misleading)
    return hidden, misleading


@rule("MBP-HIDDEN-CONTENT", Stage.DATA)
def hidden_content(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """No text hidden with CSS in HTML parts; no link whose text shows a URL of another host
    than the one it goes to."""
    if context.message is None:
        return []
    hidden, misleading = _hiding_in(context.message)
    problems: list[str] = []
    reasons = sorted({why for why, _ in hidden})
    if hidden:
        problems.append(f"text hidden from the reader ({', '.join(reasons)})")
    if misleading:
        problems.append("link text shows a URL of another host than the link goes to")
    inputs = {
        "hidden_by": reasons,
        "hidden_text": [_excerpt(text) for _, text in hidden[:_SAMPLES]],
        "links": [{"text": text, "href": href} for text, href in misleading[:_SAMPLES]],
    }
    return inspect.problems_finding(problems, inputs)


# --- MBP-NO-FOREIGN-FROM ------------------------------------------------------------------


class ForeignFromParams(_Params):
    # Mailbox-provider domains a sender cannot sign for (subdomains included).
    domains: list[str] = [
        "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de",
        "yahoo.co.jp", "ymail.com", "rocketmail.com", "aol.com", "outlook.com", "hotmail.com",
        "live.com", "msn.com", "icloud.com", "me.com", "mac.com", "gmx.com", "gmx.de",
        "gmx.net", "web.de", "mail.ru", "yandex.ru", "qq.com", "163.com", "126.com",
        "proton.me", "protonmail.com",
    ]  # fmt: skip


@rule("MBP-NO-FOREIGN-FROM", Stage.DATA, params=ForeignFromParams)
def foreign_from(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """Commercial mail is From a domain the sender controls, not a mailbox provider's."""
    # The catalogue's second half (any From domain with DMARC p=quarantine/reject for which the
    # relay holds no key) needs DNS and comes with the DNS rules.
    if context.message is None or not context.commercial:
        return []
    domains = params["domains"]
    senders = inspect.addresses(context.message, "From")
    foreign = [
        address
        for address in senders
        if inspect.within(inspect.domain_of(address), domains, subdomains=True)
    ]
    if not foreign:
        return []
    return [
        Finding(
            f"From is a mailbox provider's address the relay cannot sign for: {', '.join(foreign)}",
            {"from": senders, "provider_addresses": foreign},
        )
    ]


# --- MBP-STREAM-SEPARATION ----------------------------------------------------------------


class StreamSeparationParams(_Params):
    # Markers added to the built-in ones (whole words, case-folded).
    extra_markers: list[str] = []
    # How many different markers make a transactional message look promotional. One price alone
    # is what a receipt shows; a price beside "sale" is an advertisement.
    min_markers: PositiveInt = 2


PROMOTIONAL_WORDS = (
    "sale", "buy now", "shop now", "order now", "limited time", "limited-time", "special offer",
    "exclusive offer", "discount", "coupon", "promo code", "free shipping", "clearance",
    "deal of the day", "don't miss out", "last chance",
)  # fmt: skip
_PERCENT_OFF = re.compile(r"\d{1,3}(?:[.,]\d+)?\s?%\s?(?:off\b|discount|rabatt|de descuento)", re.I)
# A price before or after its currency; a number is read from its first digit only, so a long
# run of digits costs linear time.
_PRICE = re.compile(
    r"(?:[$€£¥￥]\s?\d|(?<![\d,.])\d[\d,.]*+\s?(?:[$€£¥￥元]|usd\b|eur\b|gbp\b|cny\b|rmb\b))",
    re.IGNORECASE,
)


# Cheap substring tests that every match of the pattern needs: the regular expressions scan
# every character, so they only run on texts that can match.
_CURRENCY = ("$", "€", "£", "¥", "￥", "元", "usd", "eur", "gbp", "cny", "rmb")


def _may_match(text: str, hint: str | tuple[str, ...]) -> bool:
    folded = text.casefold()
    return any(token in folded for token in ((hint,) if isinstance(hint, str) else hint))


def promotional_markers(context: MessageContext, extra_markers: Iterable[str] = ()) -> list[str]:
    """The promotional markers (COMPLIANCE §1.1 heuristics) in the Subject and the body text."""
    message = context.message
    parts = inspect.text_parts(message)
    texts = [inspect.subject(message), *(part.text for part in parts)]
    found: list[str] = []
    if any(inspect.mentions_unsubscribe(part, link_required=True) for part in parts):
        found.append("unsubscribe link")
    for name, pattern, hint in (("percent off", _PERCENT_OFF, "%"), ("price", _PRICE, _CURRENCY)):
        if any(_may_match(text, hint) and pattern.search(text) for text in texts):
            found.append(name)
    found.extend(inspect.find_markers(texts, (*PROMOTIONAL_WORDS, *extra_markers)))
    return found


@rule("MBP-STREAM-SEPARATION", Stage.DATA, params=StreamSeparationParams)
def stream_separation(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """A message declared transactional does not look promotional: marketing belongs on the
    marketing stream (its own From, List-Id, consent and unsubscribe)."""
    if context.message is None or context.message_class is not MessageClass.TRANSACTIONAL:
        return []
    found = promotional_markers(context, params["extra_markers"])
    if len(found) < params["min_markers"]:
        return []
    return [
        Finding(
            f"declared transactional but looks promotional: {', '.join(found[:_SAMPLES])}",
            {"message_class": context.message_class.value, "markers": found},
        )
    ]


# --- MBP-SPF-PASS, MBP-DKIM-ALIGNED, MBP-DMARC-RECORD: the sender domain's DNS ---------------


def _dns_finding(what: str, check: Check) -> Finding:
    """A check that did not pass, with the DNS answers behind it for the audit log; a
    temporary DNS failure is a temporary finding (defer, 451 4.4.3)."""
    return Finding(
        f"{what}: {check.detail}",
        {
            "check": check.name,
            "status": check.status,
            "answers": [answer.to_dict() for answer in check.answers],
        },
        temporary=check.status == "temperror",
    )


@rule("MBP-SPF-PASS", Stage.RCPT, needs=(Fact.ENVELOPE_SPF,))
def spf_pass(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """The envelope domain (the sender's VERP bounce domain, else the MAIL FROM domain)
    publishes SPF that authorises every egress address of relay, so receivers' SPF checks
    pass. The catalogue lists it at MAIL; it is decided with each recipient so that each
    refusal is recorded for its recipient."""
    check = context.envelope_spf
    if check is None or check.status in ("pass", "unknown"):
        return []
    return [_dns_finding("the envelope domain's SPF does not authorise relay", check)]


@rule("MBP-DKIM-ALIGNED", Stage.DATA, needs=(Fact.SENDER_DNS,))
def dkim_aligned(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """relay will apply a DKIM signature aligned with the From domain: it holds a key whose
    d= is the From domain or a parent aligned under the domain's DMARC adkim, and the record
    published at selector._domainkey is that key."""
    readiness = context.sender_dns
    if readiness is None:
        return []
    domain = readiness.domain
    if readiness.dkim_domain is None:
        check = readiness.check("dkim")
        assert check is not None
        return [_dns_finding(f"relay cannot sign for {domain}", check)]
    for name in readiness.active_dkim:
        check = readiness.check(name)
        if check is not None and check.status not in ("pass", "unknown"):
            return [_dns_finding(f"the DKIM key record for {domain} is not relay's key", check)]
    alignment = readiness.check("alignment")
    if readiness.dkim_aligned is None and alignment is not None:
        return [_dns_finding(f"DKIM alignment of {domain} unknown", alignment)]
    if readiness.dkim_aligned is False and alignment is not None:
        return [_dns_finding(f"d={readiness.dkim_domain} is not aligned with {domain}", alignment)]
    return []


class _DmarcParams(_Params):
    # The message classes (streams) that must have a DMARC record; for others a missing
    # record is only a warning (Gmail, Yahoo and Microsoft require it of bulk senders).
    required_for: list[MessageClass] = [MessageClass.COMMERCIAL, MessageClass.MIXED]


@rule("MBP-DMARC-RECORD", Stage.DATA, params=_DmarcParams, needs=(Fact.SENDER_DNS,))
def dmarc_record(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """The From domain (or its organisational domain) publishes a DMARC record with a p= tag;
    required for bulk (commercial) mail, advised for the rest."""
    readiness = context.sender_dns
    if readiness is None:
        return []
    check = readiness.check("dmarc")
    if check is None or check.status in ("pass", "unknown"):
        return []
    finding = _dns_finding(f"no usable DMARC record for {readiness.domain}", check)
    if context.message_class not in params["required_for"]:
        return [replace(finding, advisory=True)]
    return [finding]


# --- MBP-COMPLAINT-RATE --------------------------------------------------------------------


class ComplaintRateParams(_Params):
    # The rolling windows the rate is read over (whole hours, as `relay stats` counts them).
    windows: list[Period] = [timedelta(days=1), timedelta(days=7)]
    warn_at: Annotated[float, Field(gt=0, le=1)] = COMPLAINT_WARN
    pause_at: Annotated[float, Field(gt=0, le=1)] = COMPLAINT_PAUSE
    # Below this many delivered recipients in a window its rate pauses nothing and warns of
    # nothing: one complaint on three messages is no figure (at 1000, three complaints pause).
    min_delivered: PositiveInt = 1000


def complaint_rate_params(policies: Iterable[Policy]) -> Mapping[str, Any] | None:
    """The params of the first MBP-COMPLAINT-RATE binding, None when no policy binds it."""
    for policy in policies:
        for binding in policy.bindings:
            if binding.rule_id == COMPLAINT_RATE:
                return binding.params
    return None


@rule(COMPLAINT_RATE, Stage.RCPT, params=ComplaintRateParams, needs=(Fact.SENDER_STANDING,))
def complaint_rate(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """Commercial mail of a sender whose commercial stream is paused (by an operator, or
    automatically when its complaint rate reached `pause_at` over a window with at least
    `min_delivered` delivered) waits; a rate at or above `warn_at` draws a warning.
    Transactional mail is never paused."""
    standing = context.sender_standing
    if standing is None or not context.commercial:
        return []
    if context.message is None and context.message_class is MessageClass.MIXED:
        return []  # a mixed stream's message declares its class at end of data
    pause = standing.pause
    if pause is not None:
        since = pause.at.isoformat(timespec="seconds")
        return [
            Finding(
                f"the sender's commercial stream is paused since {since} ({pause.source}):"
                f" {pause.reason}",
                {"paused_at": since, "source": pause.source, "reason": pause.reason},
                reply_note=f"{COMPLAINT_RATE}: commercial mail of this sender is paused"
                f" ({pause.reason}) until an operator resumes it",
            )
        ]
    high = [
        (window, rate)
        for window, rate in standing.rates
        if rate.delivered >= params["min_delivered"]
        and rate.rate is not None
        and rate.rate >= params["warn_at"]
    ]
    if not high:
        return []
    return [
        Finding(
            "complaint rate "
            + ", ".join(f"{rate.rate:.2%} over {period_text(window)}" for window, rate in high)
            + f" at or above {params['warn_at']:.1%}",
            {
                "rates": [
                    {
                        "window": period_text(window),
                        "complaints": rate.complaints,
                        "delivered": rate.delivered,
                    }
                    for window, rate in high
                ]
            },
            advisory=True,
        )
    ]
