"""The fast paths of relay.policy.inspect give the results of the plain definitions they
replace: stripping addresses for the content hash, normalising text, finding the lines with
opt-out wording, the content hash read text by text; and the remembering header policy and the
single-part parse give what email.policy.default gives."""

from __future__ import annotations

import hashlib
import random
import re
from email import policy as email_policy
from email.message import EmailMessage, Message
from email.parser import BytesParser

import pytest

from relay import message_parsing
from relay.message_parsing import parse_message
from relay.policy import inspect
from relay.policy.inspect import TextPart
from tests.support.paths import CORPUS

# The definitions the fast paths must agree with.
ADDRESS = re.compile(r"[^\s<>@\"']+@[^\s<>@\"']+")
SEPARATORS = re.compile(r"[\s,]+")
ALPHABET = "ab@ <>\"'\t\n,.\u00a0\u2028ßİ"


def random_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 30))) for _ in range(count)]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "write to ann@example.com today",
        "x@y@z",
        "<a@b.c>, 'q@w' foo@@bar @lead trail@ m@n,o@p",
        "a" * 5000 + "@b c@d",
    ],
)
def test_addresses_are_stripped_as_the_regular_expression_would(text: str) -> None:
    assert inspect._without_addresses(text) == ADDRESS.sub(" ", text)


def test_addresses_in_random_texts_are_stripped_as_the_regular_expression_would() -> None:
    for text in random_texts(20000, seed=11):
        assert inspect._without_addresses(text) == ADDRESS.sub(" ", text), text


def test_normalise_is_casefold_with_whitespace_and_commas_as_one_space() -> None:
    for text in ["", " A,  b\tC\n", "Straße, İstanbul", *random_texts(5000, seed=5)]:
        assert inspect.normalise(text) == SEPARATORS.sub(" ", text.casefold()).strip(), text


def test_unsubscribe_lines_are_the_lines_that_say_unsubscribe() -> None:
    lines = [
        "Our sale starts today.",
        "To UNSUBSCRIBE, visit:",
        "https://shop.example/u/1",
        "Opt-Out here\r",
        "nothing",
        "配信停止はこちら",
        "Wörter ohne Abmeldung",
        "hier abmelden",
    ]
    text = "\n".join(lines)
    part = TextPart("text/plain", text, ())
    expected = tuple(
        number for number, line in enumerate(part.lines) if inspect.says_unsubscribe(line)
    )
    assert expected == (1, 3, 5, 7)
    assert part.unsubscribe_lines == expected
    assert TextPart("text/plain", "no opt-out wording at all? opt out", ()).unsubscribe_lines == (
        0,
    )
    assert TextPart("text/plain", "nothing here", ()).unsubscribe_lines == ()


MESSAGE = (
    b"From: =?utf-8?q?Caf=C3=A9?= <news@shop.example>\r\n"
    b"To: ann@example.us, bob@example.de\r\n"
    b"Subject: =?utf-8?b?5bm/5ZGK?= sale\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Hello \xc3\xa9\r\n"
    b"--b1\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b"<p>Hello</p>\r\n"
    b"--b1--\r\n"
)


def test_remembering_policy_reads_headers_as_the_default_policy() -> None:
    for _ in range(2):  # the second parse reads remembered header objects
        ours = parse_message(MESSAGE)
        theirs = BytesParser(policy=email_policy.default).parsebytes(MESSAGE)
        for name in ("From", "To", "Subject", "Content-Type", "MIME-Version"):
            assert str(ours[name]) == str(theirs[name])
            assert type(ours[name]).__mro__[1:] == type(theirs[name]).__mro__[1:]
        assert ours["To"].addresses == theirs["To"].addresses
        assert [p.get_content_type() for p in ours.iter_parts()] == [
            "text/plain",
            "text/html",
        ]
        body = ours.get_body(("plain",))
        expected = theirs.get_body(("plain",))
        assert body is not None
        assert expected is not None
        assert body.get_content() == expected.get_content() == "Hello é"


def test_long_header_values_are_not_remembered() -> None:
    long_subject = "x" * 2000
    message = parse_message(f"Subject: {long_subject}\r\n\r\nbody\r\n".encode())
    first, second = message["Subject"], message["Subject"]
    assert str(first) == long_subject
    assert first is not second  # parsed on each read: memory stays bounded
    short = parse_message(b"Subject: sale\r\n\r\nbody\r\n")
    assert short["Subject"] is short["Subject"]


SINGLE_PART_CASES = [
    b"Subject: plain\r\n\r\nline one\r\nline two\r\n",
    b"Subject: no final line end\r\n\r\nlast",
    b"Subject: empty body\r\n\r\n",
    b"Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xc3\xa9\xff\r\n",
    b"Subject: folded\r\n continued\r\nX-A: 1\r\n\r\nbody\r\n\r\n\r\nmore\r\n",
    b" first line is a continuation\r\nSubject: x\r\n\r\nbody\r\n",
    b"From someone@example.com Mon Jan  1 00:00:00 2024\r\nSubject: x\r\n\r\nbody\r\n",
    b"Subject: x\r\nthis is no header\r\n\r\nbody\r\n",
    b"Subject: x\nX-Bare: lf\r\n\r\nbody\r\n",
    b"Subject: x\r\nX-Bare: cr\r\r\n\r\nbody\r\n",
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\npart\r\n--b--\r\n",
    b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n",
    b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\n",
    b"Content-Type: multipart\r\n\r\nno subtype\r\n",
    b"Content-Type: text/html\r\n\r\n<p>a</p>\r\n",
    b"Subject: no blank line at all\r\n",
]


def corpus_messages() -> list[bytes]:
    return [path.read_bytes() for path in sorted(CORPUS.glob("*/eml/**/*.eml"))]


def test_single_part_fast_path_parses_as_the_email_package() -> None:
    messages = SINGLE_PART_CASES + corpus_messages()
    assert len(messages) > 100
    fast = 0
    for content in messages:
        ours = parse_message(content)
        theirs = BytesParser(policy=email_policy.default).parsebytes(content)
        assert ours.as_bytes() == theirs.as_bytes(), content[:200]
        assert [type(d) for d in ours.defects] == [type(d) for d in theirs.defects]
        assert ours.items() == theirs.items()
        assert ours.is_multipart() == theirs.is_multipart()
        if not ours.is_multipart():
            assert ours.get_payload() == theirs.get_payload()
        fast += (
            message_parsing._single_part(
                BytesParser(policy=message_parsing.MESSAGE_POLICY), content
            )
            is not None
        )
    assert fast > 20  # the fast path was taken, not only the fallback


def test_the_same_text_is_read_once_up_to_a_length() -> None:
    def part_of(body: bytes) -> TextPart:
        (part,) = inspect.text_parts(parse_message(b"Subject: a\r\n\r\n" + body))
        return part

    short = b"visit https://shop.example/x to unsubscribe\r\n"
    assert part_of(short) is part_of(short)
    assert part_of(short).links == (inspect.Link("https://shop.example/x", ""),)
    long = b"x" * (1 << 20) + b"\r\n"
    assert part_of(long) is not part_of(long)  # memory stays bounded
    assert part_of(long).text == part_of(long).text


LINK_ALPHABET = [
    "http",
    "HTTPS",
    "://",
    "MailTo:",
    "mailto",
    ":",
    "/",
    "a",
    " ",
    "\n",
    "<",
    "'",
    "İ",
    "x",
]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "see https://shop.example/a and http://b.example, mailto:ann@shop.example",
        "HTTPS://A.EXAMPLE/X xhttp://glued.example http://http://twice.example",
        "http:// nothing after https://",
        "MAILTO:Bob@Example.com'quoted' <http://angle.example>",
        "İstanbul https://after.a.longer.lower.case.example",
        "://lead mailto: https://x",
    ],
)
def test_links_are_found_and_stripped_as_the_regular_expression_would(text: str) -> None:
    assert [text[a:b] for a, b in inspect._link_spans(text)] == inspect._URL.findall(text)
    assert inspect._without_links(text) == inspect._URL.sub(" ", text)


def test_links_in_random_texts_are_found_as_the_regular_expression_would() -> None:
    rng = random.Random(17)
    for _ in range(20000):
        text = "".join(rng.choice(LINK_ALPHABET) for _ in range(rng.randint(0, 12)))
        assert [text[a:b] for a, b in inspect._link_spans(text)] == inspect._URL.findall(text)
        assert inspect._without_links(text) == inspect._URL.sub(" ", text), text


def content_hash_as_defined(message: Message) -> str:
    """The digest of the Subject and the body texts joined by line breaks, links then addresses
    removed, normalised: as the whole text, not text by text."""
    texts = [inspect.subject(message), *(part.text for part in inspect.text_parts(message))]
    stripped = ADDRESS.sub(" ", inspect._URL.sub(" ", "\n".join(texts)))
    return hashlib.sha256(inspect.normalise(stripped).encode("utf-8")).digest()[:16].hex()


def random_multipart(rng: random.Random) -> bytes:
    def text() -> str:
        return "".join(rng.choice([*LINK_ALPHABET, ",", "@", "b", "\t"]) for _ in range(30))

    message = EmailMessage()
    message["Subject"] = text().replace("\n", " ")
    message.set_content(text())
    if rng.random() < 0.7:
        message.add_alternative(f"<p>{text()}</p><a href='https://x.example'>{text()}</a>", "html")
    if rng.random() < 0.3:
        message.add_attachment(text())
    return message.as_bytes(policy=email_policy.SMTP)


def test_the_content_hash_read_text_by_text_is_the_hash_of_the_whole_text() -> None:
    rng = random.Random(23)
    contents = [random_multipart(rng) for _ in range(2000)] + corpus_messages()
    contents += [b"Subject: \r\n\r\n", b"Subject: a\r\n\r\n", b"\r\n\r\n body only"]
    for content in contents:
        message = parse_message(content)
        assert inspect.content_hash(message) == content_hash_as_defined(message), content
