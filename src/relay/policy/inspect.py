"""Reading a message for the content rules: decoded headers and addresses, the text parts a
reader sees (text/plain, and the visible text and links of text/html), List-Unsubscribe URIs,
and the words that mark an opt-out notice, a privacy notice or an advertisement.

Every function tolerates malformed mail: a header or part that cannot be decoded reads as
absent (or with replacement characters), never as an exception.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import itertools
import re
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.utils import getaddresses
from html.parser import HTMLParser
from typing import TypeVar

from relay.policy.context import MessageContext
from relay.policy.model import Finding

__all__ = [
    "ONE_CLICK",
    "HtmlReader",
    "Link",
    "TextPart",
    "addresses",
    "content_hash",
    "domain_of",
    "find_marker",
    "find_markers",
    "foreign_addresses",
    "has_marker",
    "header",
    "header_values",
    "in_body_text",
    "list_unsubscribe",
    "mentions_privacy",
    "mentions_unsubscribe",
    "no_sender",
    "normalise",
    "one_click",
    "parse_html",
    "per_message",
    "problems_finding",
    "says_unsubscribe",
    "subject",
    "text_parts",
    "unsubscribe_headers",
    "within",
]

ONE_CLICK = "List-Unsubscribe=One-Click"  # RFC 8058 §3.1: the only valid List-Unsubscribe-Post

# Opt-out wording in the languages of the jurisdictions relay serves; matched case-folded.
UNSUBSCRIBE_WORDS = (
    "unsubscribe", "opt out", "opt-out", "optout", "opt_out", "abmelden", "abbestellen",
    "désabonner", "desabonner", "désinscri", "desinscri", "darse de baja", "darte de baja",
    "cancelar suscripción", "disiscriviti", "uitschrijven", "afmelden", "wypisz", "退订",
    "取消订阅", "退訂", "拒收", "拒绝接收", "配信停止",
)  # fmt: skip
PRIVACY_WORDS = (
    "privacy", "datenschutz", "confidentialité", "données personnelles", "privacidad",
    "protección de datos", "riservatezza", "privacybeleid", "prywatności", "隐私", "個人情報",
)  # fmt: skip

_MAX_PARTS = 200
_MAX_DEPTH = 20
# Case-insensitive by character classes rather than re.IGNORECASE: a pattern that starts with
# a class lets the regular expression engine skip to candidate letters, three times faster
# over a body without links.
_URL = re.compile(r"[hHmM](?:[tT][tT][pP][sS]?://|[aA][iI][lL][tT][oO]:)[^\s<>\"')\]]+")
_ANGLE = re.compile(r"<([^<>]*)>")
_ADDRESS_RUN = re.compile(r"[^\s<>@\"']+")  # one side of an address: run@run
_NOT_IN_ADDRESS = frozenset("<>@\"'")


T = TypeVar("T")


def per_message(function: Callable[[Message], T]) -> Callable[[Message], T]:
    """Compute `function(message)` once per parsed message: the rules of every recipient of a
    transaction look at the same message, and parsing its parts or its HTML is the expensive
    part of a decision. Results live as long as the message."""
    results: weakref.WeakKeyDictionary[Message, T] = weakref.WeakKeyDictionary()

    @functools.wraps(function)
    def cached(message: Message) -> T:
        try:
            return results[message]
        except KeyError:
            result = results[message] = function(message)
            return result

    return cached


@per_message
def _decoded_headers(message: Message) -> dict[str, list[str]]:
    return {}


def header_values(message: Message | None, name: str) -> list[str]:
    """Every value of header `name`, RFC 2047-decoded; undecodable values fall back to the
    raw text. Decoded once per message and name: the email package parses a header anew on
    every access, and many rules read the same ones."""
    if message is None:
        return []
    decoded = _decoded_headers(message)
    key = name.lower()
    if key not in decoded:
        try:
            values = message.get_all(name) or []
        except Exception:
            values = [value for item, value in _raw_items(message) if item.lower() == key]
        decoded[key] = [_as_text(value) for value in values]
    return decoded[key]


def header(message: Message | None, name: str) -> str | None:
    """The first value of header `name`, decoded and stripped; None when absent."""
    values = header_values(message, name)
    return values[0].strip() if values else None


def subject(message: Message | None) -> str:
    """The decoded Subject, stripped; "" when absent."""
    return header(message, "Subject") or ""


def _raw_items(message: Message) -> list[tuple[str, str]]:
    try:
        return [(str(key), str(value)) for key, value in message.raw_items()]
    except Exception:
        return []


def _as_text(value: object) -> str:
    try:
        text = str(value)
        if type(value) is str and "=?" in text:  # a raw (compat32) value: decode RFC 2047
            text = str(make_header(decode_header(text)))
    except Exception:
        text = value if isinstance(value, str) else ""
    try:  # undecodable 8-bit bytes arrive as surrogate escapes
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def addresses(message: Message | None, name: str) -> list[str]:
    """The addr-specs of an address header (From, Reply-To, ...), lower-cased."""
    values = header_values(message, name)
    try:
        pairs = getaddresses(values)
    except Exception:
        return []
    return [address.strip().lower() for _, address in pairs if address.strip()]


def domain_of(address: str) -> str:
    """The domain of an address, lower-cased, without brackets or a trailing dot."""
    return address.strip().strip("<>").rpartition("@")[2].strip().rstrip(".").lower()


def within(domain: str, domains: Iterable[str], subdomains: bool = False) -> bool:
    """`domain` is one of `domains` (or, with `subdomains`, below one of them)."""
    domain = domain.lower().rstrip(".")
    for candidate in domains:
        candidate = candidate.lower().rstrip(".")
        if domain == candidate or (subdomains and domain.endswith("." + candidate)):
            return True
    return False


def foreign_addresses(found: Iterable[str], verified: Iterable[str]) -> list[str]:
    """The addresses whose domain is not one of the `verified` domains, in order."""
    verified = tuple(verified)
    return [address for address in found if not within(domain_of(address), verified)]


def list_unsubscribe(message: Message | None) -> list[str]:
    """The URIs of List-Unsubscribe (RFC 2369 §3.2: each in angle brackets)."""
    found: list[str] = []
    for value in header_values(message, "List-Unsubscribe"):
        found.extend(re.sub(r"\s+", "", uri) for uri in _ANGLE.findall(value))
    return found


def one_click(message: Message | None) -> bool:
    """RFC 8058: an https List-Unsubscribe URI and `List-Unsubscribe-Post: List-Unsubscribe=
    One-Click`."""
    https = any(uri.lower().startswith("https://") for uri in list_unsubscribe(message))
    posts = [value.strip() for value in header_values(message, "List-Unsubscribe-Post")]
    return https and ONE_CLICK in posts


def unsubscribe_headers(message: Message | None) -> dict[str, object]:
    """The List-Unsubscribe URIs and the List-Unsubscribe-Post value, as a finding records
    them."""
    return {
        "list_unsubscribe": list_unsubscribe(message),
        "list_unsubscribe_post": header(message, "List-Unsubscribe-Post"),
    }


@dataclass(frozen=True, slots=True)
class Link:
    href: str
    text: str


@dataclass(frozen=True)
class TextPart:
    """What a reader sees of one body part: its text and its links."""

    content_type: str  # text/plain or text/html
    text: str
    links: tuple[Link, ...]

    # Several rules of every recipient ask; a part lives as long as its parsed message (or as
    # long as _remembered_text_part keeps it).
    @functools.cached_property
    def unsubscribe_link(self) -> bool:
        """A link whose address or words speak of opting out."""
        return any(
            says_unsubscribe(link.href) or says_unsubscribe(link.text) for link in self.links
        )

    @functools.cached_property
    def unsubscribe_wording(self) -> bool:
        """Opt-out wording anywhere in the text."""
        return says_unsubscribe(self.text)

    @functools.cached_property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    @functools.cached_property
    def unsubscribe_lines(self) -> tuple[int, ...]:
        """The numbers (0-based, in `lines`) of the lines with opt-out wording. Found by
        searching the whole text for each word rather than each line for every word: a long
        part has thousands of lines and a few such words."""
        if not self.unsubscribe_wording:
            return ()
        folded_lines = self.text.casefold().splitlines(keepends=True)
        starts = list(itertools.accumulate(map(len, folded_lines), initial=0))
        folded = "".join(folded_lines)
        found: set[int] = set()
        for word in UNSUBSCRIBE_WORDS:
            at = folded.find(word)
            while at >= 0:
                found.add(bisect.bisect_right(starts, at) - 1)
                at = folded.find(word, at + 1)
        return tuple(sorted(found))

    @functools.cached_property
    def normalised(self) -> str:
        """The text normalised (see `normalise`): what names and addresses are looked up in."""
        return normalise(self.text)

    @functools.cached_property
    def hashed_text(self) -> str:
        """What content_hash reads of this part."""
        return _hashed_text(self.text)


Attributes = list[tuple[str, str | None]]


class HtmlReader:
    """What reads an HTML part: the callbacks of html.parser.HTMLParser, fed from one shared
    tokenisation of the part (see parse_html)."""

    def handle_starttag(self, tag: str, attrs: Attributes) -> None:
        """An opening tag, its name lower-cased."""

    def handle_endtag(self, tag: str) -> None:
        """A closing tag (also sent right after the start of a self-closing one)."""

    def handle_data(self, data: str) -> None:
        """Text, with character references already converted."""

    def close(self) -> None:
        """The end of the part."""


class _Tokens(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[tuple[int, str, Attributes | str]] = []

    def handle_starttag(self, tag: str, attrs: Attributes) -> None:
        self.events.append((_START, tag, attrs))

    def handle_endtag(self, tag: str) -> None:
        self.events.append((_END, tag, ""))

    def handle_data(self, data: str) -> None:
        self.events.append((_DATA, "", data))


_START, _END, _DATA = range(3)


@functools.lru_cache(maxsize=8)  # the parts of the messages being decided right now
def _tokens(html: str) -> tuple[tuple[int, str, Attributes | str], ...]:
    """The tags and text of `html`, tokenised once however many readers look at it; what was
    read before a failure stays (html.parser is lenient, so that is only a last guard)."""
    tokens = _Tokens()
    try:
        tokens.feed(html)
        tokens.close()
    except Exception:
        pass
    return tuple(tokens.events)


def parse_html(reader: HtmlReader, html: str) -> None:
    """Feed the tags and text of `html` to `reader`, then close it."""
    for kind, tag, value in _tokens(html):
        if kind == _START:
            assert not isinstance(value, str)
            reader.handle_starttag(tag, value)
        elif kind == _END:
            reader.handle_endtag(tag)
        else:
            assert isinstance(value, str)
            reader.handle_data(value)
    reader.close()


class _VisibleText(HtmlReader):
    _HIDDEN = frozenset({"head", "title", "script", "style", "template", "noscript"})
    _INLINE = frozenset({"a", "b", "i", "u", "em", "strong", "span", "font", "small", "big"})

    def __init__(self) -> None:
        self.chunks: list[str] = []
        self.links: list[Link] = []
        self._hidden = 0
        self._href: str | None = None
        self._link_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: Attributes) -> None:
        if tag == "body":
            # Browsers end an unclosed <head> (and whatever was left open in it) at <body>.
            self._hidden = 0
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag == "a":
            self._close_link()
            self._href = next((value or "" for key, value in attrs if key == "href"), None)
            self._link_text = []
        if tag not in self._INLINE:
            self.chunks.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag == "a":
            self._close_link()
        if tag not in self._INLINE:
            self.chunks.append(" ")

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        self.chunks.append(data)
        if self._href is not None:
            self._link_text.append(data)

    def _close_link(self) -> None:
        if self._href is not None:
            self.links.append(Link(self._href.strip(), " ".join(self._link_text).strip()))
        self._href = None

    def close(self) -> None:
        self._close_link()


def _html_part(html: str) -> TextPart:
    parser = _VisibleText()
    parse_html(parser, html)
    text = "".join(parser.chunks)
    links = [*parser.links, *(Link(text[a:b], "") for a, b in _link_spans(text))]
    return TextPart("text/html", text, tuple(links))


def _content(part: Message) -> str:
    try:
        if isinstance(part, EmailMessage):
            content = part.get_content()
            if isinstance(content, str):
                return content
    except Exception:
        pass
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return ""
    if not isinstance(payload, bytes):
        return ""
    charset = "utf-8"
    try:
        charset = part.get_content_charset() or "utf-8"
        return payload.decode(charset, "replace")
    except Exception:
        return payload.decode("utf-8", "replace")


def _body_parts(message: Message) -> Iterable[Message]:
    """Leaf parts that form the body: not attachments, not attached messages."""
    stack: list[tuple[Message, int]] = [(message, 0)]
    seen = 0
    while stack and seen < _MAX_PARTS:
        part, depth = stack.pop()
        seen += 1
        try:
            if part is not message and part.get_content_disposition() == "attachment":
                continue
            if part.is_multipart():
                if depth < _MAX_DEPTH and part.get_content_maintype() == "multipart":
                    children = part.get_payload()
                    if isinstance(children, list):
                        stack.extend(
                            (child, depth + 1)
                            for child in reversed(children)
                            if isinstance(child, Message)
                        )
                continue
        except Exception:
            continue
        yield part


def text_parts(message: Message | None) -> list[TextPart]:
    """The text/plain and text/html parts of the body, in order."""
    return [] if message is None else _decode_text_parts(message)


@per_message
def _decode_text_parts(message: Message) -> list[TextPart]:
    found: list[TextPart] = []
    for part in _body_parts(message):
        try:
            content_type = part.get_content_type()
        except Exception:
            continue
        if content_type in ("text/plain", "text/html"):
            found.append(_text_part(content_type, _content(part)))
    return found


def _text_part(content_type: str, content: str) -> TextPart:
    if len(content) > _REMEMBERED_TEXT_LENGTH:
        return _read_text_part(content_type, content)
    return _remembered_text_part(content_type, content)


def _read_text_part(content_type: str, content: str) -> TextPart:
    if content_type == "text/html":
        return _html_part(content)
    return TextPart(
        content_type, content, tuple(Link(content[a:b], "") for a, b in _link_spans(content))
    )


# The same text is read again within one decision: the footer fix reads its copy back, then the
# rules read the fixed copy. Remembering the last few parts (and so what was worked out from
# them: links, opt-out lines, normalised text) saves a third of the reading; the length bound
# keeps the memory bounded whatever the message size.
_REMEMBERED_TEXT_LENGTH = 1 << 20
_remembered_text_part = functools.lru_cache(maxsize=8)(_read_text_part)


def normalise(text: str) -> str:
    """Case-folded, with runs of whitespace and commas as one space: for finding an address or a
    name in a body however it was wrapped. (str.split rather than a regular expression
    substitution: the same result, four times faster on a long body.)"""
    return " ".join(text.casefold().replace(",", " ").split())


def _mentions(text: str, words: Iterable[str]) -> bool:
    folded = text.casefold()
    return any(word in folded for word in words)


def says_unsubscribe(text: str) -> bool:
    """The text (a line, a link's address or its words) speaks of opting out."""
    return _mentions(text, UNSUBSCRIBE_WORDS)


def mentions_unsubscribe(part: TextPart, link_required: bool = False) -> bool:
    """The part tells the reader how to opt out: an unsubscribe link (by its address or its
    text), or, unless `link_required`, opt-out wording in its text."""
    return part.unsubscribe_link or (not link_required and part.unsubscribe_wording)


def mentions_privacy(part: TextPart) -> bool:
    """The part links to a privacy notice (by the link's address or text)."""
    return any(
        _mentions(link.href, PRIVACY_WORDS) or _mentions(link.text, PRIVACY_WORDS)
        for link in part.links
    )


def find_markers(texts: Iterable[str], markers: Iterable[str]) -> list[str]:
    """The markers (such as "Ad:" or "Advertisement") found in any of the texts, in the order
    given, case-folded; a marker that begins or ends with a letter or digit must not be part of
    a longer word. Plain substring search: this runs for every message."""
    folded = [text.casefold() for text in texts]
    return [
        marker
        for marker in dict.fromkeys(markers)
        if marker and any(_contains_word(text, marker.casefold()) for text in folded)
    ]


def find_marker(texts: Iterable[str], markers: Iterable[str]) -> str | None:
    """The first of `markers` found (see find_markers), if any."""
    found = find_markers(texts, markers)
    return found[0] if found else None


def has_marker(message: Message | None, markers: Iterable[str]) -> bool:
    """One of `markers` (see find_markers) is in the Subject or the text of a body part."""
    texts = [subject(message), *(part.text for part in text_parts(message))]
    return bool(find_markers(texts, markers))


def _is_word_character(character: str) -> bool:
    return character.isalnum() or character == "_"


def _contains_word(text: str, needle: str) -> bool:
    check_before = _is_word_character(needle[0])
    check_after = _is_word_character(needle[-1])
    start = text.find(needle)
    while start >= 0:
        end = start + len(needle)
        if not (check_before and start > 0 and _is_word_character(text[start - 1])) and not (
            check_after and end < len(text) and _is_word_character(text[end])
        ):
            return True
        start = text.find(needle, start + 1)
    return False


def in_body_text(parts: Iterable[TextPart], text: str) -> bool:
    """`text` (a name, a postal address) is in the text of one of `parts`, however it is wrapped
    or cased; an empty `text` never is."""
    wanted = normalise(text)
    return bool(wanted) and any(wanted in part.normalised for part in parts)


def problems_finding(problems: list[str], inputs: Mapping[str, object]) -> list[Finding]:
    """No finding when there are no `problems`, else one that names them all."""
    if not problems:
        return []
    return [Finding("; ".join(problems), inputs)]


def no_sender(context: MessageContext) -> Finding:
    """The finding of an identity rule that has no sender profile to compare the message with."""
    return Finding(
        "no sender profile for this message: cannot check who sends it",
        {"authenticated_as": context.authenticated_as, "mail_from": context.mail_from},
    )


@per_message
def content_hash(message: Message) -> str:
    """What makes two messages "the same content" to a reader (the cadence rules): SHA-256
    (first 16 bytes, hex) of the Subject and the text of the body parts, joined by line breaks,
    normalised, without links and addresses (unsubscribe tokens, tracking and the recipient's
    own address differ in every copy of a campaign).

    Neither a link nor an address spans a line break, and normalising makes the break one
    space, so each text is read on its own (and a part's reading kept with the part: the copies
    of a campaign often share their text)."""
    texts = [_hashed_text(subject(message)), *(part.hashed_text for part in text_parts(message))]
    joined = " ".join(text for text in texts if text)
    return hashlib.sha256(joined.encode("utf-8")).digest()[:16].hex()


def _hashed_text(text: str) -> str:
    return normalise(_without_addresses(_without_links(text)))


def _link_spans(text: str) -> Iterator[tuple[int, int]]:
    """The spans of _URL.finditer(text), found from each "://" and "mailto:" instead of tried at
    every position: 0.4 ms on a 100 KB body with the regular expression alone, 0.05 ms so."""
    lowered = text.lower()
    if len(lowered) != len(text):  # a character whose lower case is longer shifts positions
        yield from (match.span() for match in _URL.finditer(text))
        return
    starts: list[int] = []
    for marker, schemes in (("://", ("https", "http")), ("mailto:", ("",))):
        at = lowered.find(marker)
        while at >= 0:
            starts += [
                at - len(scheme)
                for scheme in schemes
                if lowered.startswith(scheme, at - len(scheme))
            ]
            at = lowered.find(marker, at + 1)
    end = 0
    for start in sorted(starts):
        if start < end:
            continue
        match = _URL.match(text, start)
        if match is not None:
            end = match.end()
            yield start, end


def _without_links(text: str) -> str:
    """_URL.sub(" ", text) (see _link_spans)."""
    pieces: list[str] = []
    done = 0
    for start, end in _link_spans(text):
        pieces += [text[done:start], " "]
        done = end
    return "".join(pieces) + text[done:] if pieces else text


def _without_addresses(text: str) -> str:
    """Each address (a run of characters other than whitespace, <, >, @, quotes, then @ and
    another such run) replaced by a space, leftmost first, as re.sub would. Found from each @
    rather than tried at every position: a regular expression starting with a character class
    costs 3 ms on a 100 KB body, this 0.01 ms."""
    pieces: list[str] = []
    done = 0  # text[:done] is in pieces
    at = text.find("@")
    while at >= 0:
        right = _ADDRESS_RUN.match(text, at + 1)
        if right is not None:
            start = at
            while start > done and not (
                text[start - 1].isspace() or text[start - 1] in _NOT_IN_ADDRESS
            ):
                start -= 1
            if start < at:
                pieces += (text[done:start], " ")
                done = right.end()
        at = text.find("@", max(at + 1, done))
    pieces.append(text[done:])
    return "".join(pieces)
