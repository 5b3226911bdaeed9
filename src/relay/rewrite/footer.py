"""The identity footer: the sender's legal name, postal address and contact and the unsubscribe
links, appended to the text/plain and text/html parts of the body (US-POSTAL-ADDRESS,
EU-EPR-IDENTITY-FOOTER, PRC-ADLAW-IDENTITY, and the body link of EU-WITHDRAW-EASY and
US-OPTOUT-PRESENT).

Compliance content only, never anything promotional (PRC-NO-AD-INJECTION): the footer is built
from the sender profile and the relay's own unsubscribe links, nothing else, and it says only
what the part lacks. Each part is read as the policy rules read it (relay.policy.inspect), so a
part that already shows the name, the address, the contact and an unsubscribe link gets nothing,
and applying the fix twice changes nothing the second time.

Parts are found with the email package, changed in the message bytes: a changed part is decoded
(transfer encoding, charset), given its footer (HTML before `</body>` when there is one) and
encoded again the way it was; a part whose charset cannot carry the footer becomes UTF-8; a 7bit
part that is no longer ASCII becomes quoted-printable. Attachments, attached messages and every
other part stay byte-identical.
"""

from __future__ import annotations

import codecs
import html
import re
from dataclasses import dataclass

from relay.policy import inspect
from relay.rewrite import Change, Rewrite, Unfixable, raw
from relay.rewrite.unsubscribe import UnsubscribeLinks
from relay.stores.models import SenderProfile

__all__ = ["FooterLabels", "fix_footer", "html_footer", "plain_footer"]

_NOT_ASCII_COMPATIBLE = frozenset(
    {"utf_16", "utf_16_le", "utf_16_be", "utf_32", "utf_32_le", "utf_32_be", "utf_7"}
)
_BODY_END = re.compile(rb"</body[\s>]", re.IGNORECASE)
_TEXT_TYPES = ("text/plain", "text/html")


@dataclass(frozen=True, slots=True)
class FooterLabels:
    """The footer's few words, in the language the operator configures (e.g. 联系方式 / 退订);
    an unsubscribe label must speak of opting out (relay.policy.inspect.UNSUBSCRIBE_WORDS)."""

    contact: str = "Contact"
    unsubscribe: str = "Unsubscribe"
    unsubscribe_by_email: str = "Unsubscribe by e-mail"


@dataclass(frozen=True, slots=True)
class _Missing:
    name: bool
    address: bool
    contact: bool
    unsubscribe: bool

    def __bool__(self) -> bool:
        return self.name or self.address or self.contact or self.unsubscribe


def _one_line(text: str) -> str:
    return ", ".join(line.strip() for line in text.splitlines() if line.strip())


def _missing(part: inspect.TextPart, sender: SenderProfile) -> _Missing:
    def lacks(value: str) -> bool:
        return bool(inspect.normalise(value)) and not inspect.in_body_text([part], value)

    return _Missing(
        name=lacks(sender.legal_name),
        address=lacks(sender.postal_address),
        contact=lacks(sender.contact),
        unsubscribe=not inspect.mentions_unsubscribe(part, link_required=True),
    )


_ALL = _Missing(True, True, True, True)


def plain_footer(
    sender: SenderProfile,
    links: UnsubscribeLinks,
    labels: FooterLabels = FooterLabels(),
    missing: _Missing = _ALL,
) -> str:
    """The text/plain footer (CRLF lines): one line per item the part lacks."""
    lines: list[str] = []
    if missing.name:
        lines.append(_one_line(sender.legal_name))
    if missing.address:
        lines.append(_one_line(sender.postal_address))
    if missing.contact:
        lines.append(f"{labels.contact}: {_one_line(sender.contact)}")
    if missing.unsubscribe:
        lines.append(f"{labels.unsubscribe}: {links.https}")
        lines.append(f"{labels.unsubscribe_by_email}: {links.mailto}")
    return "".join(line + "\r\n" for line in lines)


def _contact_link(contact: str) -> str:
    shown = html.escape(_one_line(contact))
    if re.match(r"^(?:https?|mailto):", contact.strip(), re.IGNORECASE):
        href = contact.strip()
    elif "@" in contact and " " not in contact.strip():
        href = "mailto:" + contact.strip()
    else:
        return shown
    return f'<a href="{html.escape(href, quote=True)}">{shown}</a>'


def html_footer(
    sender: SenderProfile,
    links: UnsubscribeLinks,
    labels: FooterLabels = FooterLabels(),
    missing: _Missing = _ALL,
) -> str:
    """The text/html footer: a plain block of the items the part lacks, every value escaped."""
    identity: list[str] = []
    if missing.name:
        identity.append(html.escape(_one_line(sender.legal_name)))
    if missing.address:
        identity.append(html.escape(_one_line(sender.postal_address)))
    if missing.contact:
        identity.append(f"{html.escape(labels.contact)}: {_contact_link(sender.contact)}")
    paragraphs: list[str] = []
    if identity:
        paragraphs.append("<p>" + "<br>\r\n".join(identity) + "</p>")
    if missing.unsubscribe:
        paragraphs.append(
            f'<p><a href="{html.escape(links.https, quote=True)}">'
            f"{html.escape(labels.unsubscribe)}</a>\r\n"
            f'| <a href="{html.escape(links.mailto, quote=True)}">'
            f"{html.escape(labels.unsubscribe_by_email)}</a></p>"
        )
    return (
        '<div style="margin-top:2em;font-size:small">\r\n'
        + "\r\n".join(paragraphs)
        + "\r\n</div>\r\n"
    )


def _body_leaves(tree: raw.Part) -> list[raw.Part]:
    """The text parts a reader sees, as relay.policy.inspect finds them: multiparts opened,
    attachments and attached messages not."""
    found: list[raw.Part] = []
    stack = [tree]
    while stack:
        part = stack.pop()
        if part is not tree and part.parsed.get_content_disposition() == "attachment":
            continue
        if part.children:
            stack.extend(reversed(part.children))
        elif part.content_type in _TEXT_TYPES:
            found.append(part)
    return found


def _with_footer(data: bytes, footer: bytes, is_html: bool, line_break: bytes) -> bytes:
    if is_html:
        ends = list(_BODY_END.finditer(data))
        if ends:
            at = ends[-1].start()
            return data[:at] + footer + data[at:]
    if not data:
        return footer
    if data.endswith(line_break):
        return data + line_break + footer
    return data + line_break * 2 + footer


def fix_footer(
    message: bytes,
    sender: SenderProfile,
    links: UnsubscribeLinks,
    *,
    rule_id: str,
    labels: FooterLabels = FooterLabels(),
) -> Rewrite | Unfixable:
    """Append the footer to every text/plain and text/html body part that lacks part of it."""
    try:
        tree = raw.locate(message)
    except raw.StructureError as exc:
        return Unfixable(rule_id, f"cannot locate the body parts: {exc}")
    leaves = _body_leaves(tree)
    if not leaves:
        return Unfixable(rule_id, "no text/plain or text/html part to carry the footer")
    edits: list[tuple[int, int, bytes]] = []
    changes: list[Change] = []
    for leaf in leaves:
        (seen,) = inspect.text_parts(leaf.parsed)
        missing = _missing(seen, sender)
        if not missing:
            continue
        is_html = leaf.content_type == "text/html"
        text = (html_footer if is_html else plain_footer)(sender, links, labels, missing)
        edit = _edit(message, leaf, text, is_html, tree)
        if isinstance(edit, str):
            return Unfixable(rule_id, f"{raw.label(leaf)}: {edit}")
        edits.append(edit[0])
        changes.append(Change(rule_id, raw.label(leaf), None, text.strip()))
        changes.extend(
            Change(rule_id, f"{raw.label(leaf)} {name}", old, new) for name, old, new in edit[1]
        )
    if not edits:
        return message, []
    fixed = raw.splice(message, edits)
    return _checked(fixed, sender, rule_id, [change.field for change in changes]) or (
        fixed,
        changes,
    )


def _checked(
    fixed: bytes, sender: SenderProfile, rule_id: str, labels: list[str]
) -> Unfixable | None:
    """Read the changed parts back as the rules do: each must now show everything. (An HTML
    part whose <head> is never closed hides all that follows from relay.policy.inspect's reader,
    the footer too.)"""
    try:
        tree = raw.locate(fixed)
    except raw.StructureError as exc:
        return Unfixable(rule_id, f"the changed message cannot be read back: {exc}")
    for leaf in _body_leaves(tree):
        if raw.label(leaf) in labels:
            (seen,) = inspect.text_parts(leaf.parsed)
            if _missing(seen, sender):
                return Unfixable(rule_id, f"{raw.label(leaf)}: the footer would not be seen")
    return None


_Edit = tuple[tuple[int, int, bytes], list[tuple[str, str | None, str]]]


def _edit(
    message: bytes, leaf: raw.Part, footer: str, is_html: bool, tree: raw.Part
) -> _Edit | str:
    """The splice that adds `footer` to `leaf`, and the (field, old, new) of its header changes;
    a string says why it cannot be made."""
    body = message[leaf.body : leaf.end]
    encoding = raw.transfer_encoding(leaf.parsed)
    data = raw.decode_transfer(body, encoding)
    if data is None:
        return f"cannot decode Content-Transfer-Encoding {encoding!r}"
    declared = leaf.parsed.get_content_charset()
    charset = declared or "us-ascii"
    try:
        codec = codecs.lookup(charset).name.replace("-", "_")
    except LookupError:
        return f"unknown charset {charset!r}"
    header_changes: list[tuple[str, str | None, str]] = []
    footer_bytes: bytes | None = None
    if codec not in _NOT_ASCII_COMPATIBLE:
        try:
            footer_bytes = footer.encode(codec)
        except UnicodeEncodeError:
            footer_bytes = None
    if footer_bytes is None:  # write the part in UTF-8
        try:
            data = data.decode(codec).encode("utf-8")
        except UnicodeDecodeError:
            return f"the part is not valid {charset} and cannot be converted to UTF-8"
        footer_bytes = footer.encode("utf-8")
        header_changes.append(("charset", declared, "utf-8"))
    new_data = _with_footer(data, footer_bytes, is_html, raw.CRLF)
    new_encoding = encoding
    if encoding in ("", "7bit") and not new_data.isascii():
        new_encoding = "quoted-printable"
        header_changes.append(("Content-Transfer-Encoding", encoding or None, new_encoding))
    items, _ = raw.part_fields(message, leaf)
    if new_encoding != encoding:
        items = raw.set_field(items, raw.make_field("Content-Transfer-Encoding", new_encoding))
    if any(name == "charset" for name, _, _ in header_changes):
        content_type = raw.with_param(
            str(leaf.parsed.get("Content-Type", "text/plain")), "charset", "utf-8"
        )
        items = raw.set_field(items, raw.make_field("Content-Type", content_type))
    if header_changes and leaf is tree:
        items = raw.mime_version(items)
    encoded = raw.encode_transfer(new_data, new_encoding, body.endswith(raw.CRLF))
    return raw.replace_part(message, leaf, items, encoded), header_changes
