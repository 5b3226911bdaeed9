"""The PRC advertising mark at the front of the Subject (PRC-SUBJECT-AD-PREFIX, 办法 Art. 13(3)).

A Subject that already begins with 广告 or AD (after white space and one opening bracket, as
the policy rule reads it) is left alone, so the prefix is never doubled. A plain-ASCII Subject
given an ASCII prefix (`[AD] `) keeps its bytes and folding, with the prefix inserted; any other
Subject is written anew as RFC 2047 encoded-words (`=?UTF-8?B?...?=`), folded so that no line
exceeds 78 characters.
"""

from __future__ import annotations

from relay.message_parsing import parse_message
from relay.policy import inspect
from relay.policy.rules.cn_prc import AD_PREFIXES
from relay.rewrite import Change, Rewrite, raw

__all__ = ["RULE_ID", "encode_words", "fix_subject_prefix", "fold", "has_ad_prefix"]

RULE_ID = "PRC-SUBJECT-AD-PREFIX"
_OPENING_BRACKETS = "[【(（「"
_WIDTH = 78  # RFC 5322 §2.1.1: SHOULD
_MAX_WORD = 75  # RFC 2047 §2: an encoded-word is at most 75 characters
_WORD_OVERHEAD = len("=?UTF-8?B??=")


def has_ad_prefix(subject: str) -> bool:
    """The decoded Subject begins with 广告 or AD (case-sensitive), after leading white space
    and at most one opening bracket; "ADVENTURE" does not count. The same reading as the rule
    PRC-SUBJECT-AD-PREFIX (relay.policy.rules.cn_prc), which keeps it inside its check."""
    head = subject.lstrip()
    if head[:1] and head[0] in _OPENING_BRACKETS:
        head = head[1:]
    joined = head[2:3].isascii() and head[2:3].isalpha()
    return head.startswith(AD_PREFIXES) and not (head.startswith("AD") and joined)


def _word_length(octets: int) -> int:
    return _WORD_OVERHEAD + 4 * -(-octets // 3)


def encode_words(text: str, first_line_room: int) -> list[str]:
    """`text` as UTF-8 "B" encoded-words, split between characters: the first fits in
    `first_line_room` characters (at least one character goes in any case), each further one
    starts a new line with a space and fits in 78 characters."""
    words: list[str] = []
    budget = min(_MAX_WORD, first_line_room)
    chunk: list[str] = []
    size = 0
    for character in text:
        octets = len(character.encode("utf-8"))
        if chunk and _word_length(size + octets) > budget:
            words.append("".join(chunk))
            chunk, size, budget = [], 0, min(_MAX_WORD, _WIDTH - 1)
        chunk.append(character)
        size += octets
    words.append("".join(chunk))
    encoded = [raw.b_word(word) for word in words]
    return [encoded[0], *(" " + word for word in encoded[1:])]


def fold(text: str, first_line_room: int) -> list[str]:
    """Plain text folded at spaces: the first line within `first_line_room` characters, the
    others (each starting with the space it was folded at) within 78, where the words allow."""
    lines: list[str] = []
    current = ""
    room = first_line_room
    for word in text.split(" "):
        candidate = f"{current} {word}" if current or lines else word
        if current and len(candidate) > room:
            lines.append(current)
            current, room = f" {word}", _WIDTH
        else:
            current = candidate
    lines.append(current)
    return lines


def fix_subject_prefix(message: bytes, prefix: str, *, rule_id: str = RULE_ID) -> Rewrite:
    """Prepend `prefix` (the policy's `prefix` parameter: 【广告】 or "[AD] ") to the Subject
    unless it is marked already; a message without a Subject gets one of the prefix alone."""
    if not has_ad_prefix(prefix):
        raise ValueError(f"{prefix!r} does not mark a Subject as 广告 or AD")
    parsed = parse_message(message, headers_only=True)
    header, rest = raw.split(message)
    items = raw.fields(header)
    index = next((n for n, item in enumerate(items) if item.key == "subject"), None)
    old = inspect.subject(parsed) if index is not None else None
    if old is not None and has_ad_prefix(old):
        return message, []
    new = (prefix + (old or "")).strip()
    field = _ascii_prefixed(items[index], prefix) if index is not None else None
    if field is None:
        room = _WIDTH - len("Subject: ")
        plain = new.isascii() and "=?" not in new
        field = raw.make_field("Subject", *(fold(new, room) if plain else encode_words(new, room)))
    if index is None:
        items.append(field)
    else:
        items[index] = field
    return raw.join(items) + rest, [Change(rule_id, "Subject", old, new)]


def _ascii_prefixed(field: raw.Field, prefix: str) -> raw.Field | None:
    """The field with `prefix` inserted before its text, when both are plain ASCII without
    encoded-words and the first line stays within 78 characters; else None."""
    name, _, value = field.raw.partition(b":")
    text = value.lstrip(b" \t")
    if not (prefix.isascii() and value.isascii()) or b"=?" in value or not text.strip():
        return None
    first = name + b": " + prefix.encode("ascii") + text
    if len(first.split(raw.CRLF, 1)[0]) > _WIDTH:
        return None
    return raw.Field(field.name, first)
