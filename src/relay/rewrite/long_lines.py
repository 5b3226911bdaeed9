"""Body lines over 998 octets re-encoded, header lines over 998 octets refused
(RFC-5322-LINELEN; RFC 5322 §2.1.1, RFC 5321 §4.5.3.1.6).

A leaf part with a long line is re-encoded quoted-printable (base64 when it was base64, with its
lines wrapped at 76) and its Content-Transfer-Encoding updated; the decoded content does not
change, and every other part stays byte-identical. A long header line, a long line in a part's
header, in a preamble or epilogue or inside an attached message cannot be fixed: `Unfixable`,
which the pipeline answers with 554 5.6.0.
"""

from __future__ import annotations

from relay.rewrite import Change, Rewrite, Unfixable, raw

__all__ = ["RULE_ID", "fix_long_lines"]

RULE_ID = "RFC-5322-LINELEN"
_REENCODABLE = frozenset({"", "7bit", "8bit", "binary", "quoted-printable", "base64"})


def fix_long_lines(message: bytes, *, rule_id: str = RULE_ID) -> Rewrite | Unfixable:
    header, rest = raw.split(message)
    if raw.long_lines(header):
        return Unfixable(rule_id, f"a header line is longer than {raw.MAX_LINE} octets")
    if not raw.long_lines(rest):
        return message, []
    try:
        tree = raw.locate(message)
    except raw.StructureError as exc:
        return Unfixable(rule_id, f"cannot locate the body parts: {exc}")
    edits: list[tuple[int, int, bytes]] = []
    changes: list[Change] = []
    for leaf in tree.leaves():
        body = message[leaf.body : leaf.end]
        encoding = raw.transfer_encoding(leaf.parsed)
        if not raw.long_lines(body):
            continue
        data = raw.decode_transfer(body, encoding) if encoding in _REENCODABLE else None
        if data is None or leaf.parsed.get_content_maintype() in ("message", "multipart"):
            return Unfixable(
                rule_id, f"{raw.label(leaf)}: a long line in a part relay cannot re-encode"
            )
        new_encoding = "base64" if encoding == "base64" else "quoted-printable"
        encoded = raw.encode_transfer(data, new_encoding, body.endswith(raw.CRLF))
        items, _ = raw.part_fields(message, leaf)
        items = raw.set_field(items, raw.make_field("Content-Transfer-Encoding", new_encoding))
        if leaf is tree:
            items = raw.mime_version(items)
        edits.append(raw.replace_part(message, leaf, items, encoded))
        changes.append(
            Change(
                rule_id,
                f"{raw.label(leaf)} Content-Transfer-Encoding",
                encoding or None,
                new_encoding,
            )
        )
    fixed = raw.splice(message, edits)
    if raw.long_lines(fixed):
        return Unfixable(
            rule_id, f"a line longer than {raw.MAX_LINE} octets outside any part's body"
        )
    return fixed, changes
