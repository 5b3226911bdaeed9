"""RFC 5321 §4.1.2 path syntax (with RFC 6531 UTF-8 extensions) and §4.5.3.1 length limits."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["AddressError", "ParsedPath", "parse_parameters", "parse_path"]

_ATEXT = r"A-Za-z0-9!#$%&'*+\-/=?^_`{|}~"
_UTF8 = r"\u0080-\U0010FFFF"
_QTEXT = r"\x20\x21\x23-\x5b\x5d-\x7e"
_SOURCE_ROUTE = r"(?:@[^,:<>]+(?:,@[^,:<>]+)*:)?"
_ESMTP_KEYWORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_ESMTP_VALUE = re.compile(r"^[\x21-\x3c\x3e-\x7e]+$")

MAX_LOCAL_PART = 64
MAX_DOMAIN = 255
MAX_PATH = 256


def _mailbox_pattern(utf8: bool) -> re.Pattern[str]:
    extra = _UTF8 if utf8 else ""
    atom = f"[{_ATEXT}{extra}]+"
    quoted = rf'"(?:[{_QTEXT}{extra}]|\\[\x20-\x7e])*"'
    label = rf"[A-Za-z0-9{extra}](?:[A-Za-z0-9\-{extra}]*[A-Za-z0-9{extra}])?"
    return re.compile(
        rf"^(?P<local>{atom}(?:\.{atom})*|{quoted})@(?P<domain>{label}(?:\.{label})*)\.?$"
    )


_MAILBOX = {False: _mailbox_pattern(False), True: _mailbox_pattern(True)}


class AddressError(ValueError):
    """The path is not acceptable; `too_long` tells a length limit from a syntax error."""

    def __init__(self, message: str, *, too_long: bool = False) -> None:
        super().__init__(message)
        self.too_long = too_long


@dataclass(frozen=True, slots=True)
class ParsedPath:
    address: str  # "" for the null reverse path
    parameters: str

    @property
    def non_ascii(self) -> bool:
        return not self.address.isascii()


def parse_path(argument: str, *, allow_null: bool, utf8: bool) -> ParsedPath:
    """Parse '<local@domain> PARAMS' as sent after MAIL FROM: or RCPT TO:."""
    argument = argument.strip()
    if not argument.startswith("<"):
        # RFC 5321 requires <>, but many mailers send a bare address; accept it as Postfix does.
        bare, _, rest = argument.partition(" ")
        argument = f"<{bare}> {rest}"
    end = argument.find(">")
    if end < 0:
        raise AddressError("missing closing >")
    path, parameters = argument[1:end], argument[end + 1 :]
    if parameters and not parameters.startswith(" "):
        raise AddressError("text after > must be parameters separated by a space")
    if len(path.encode("utf-8", "surrogateescape")) + 2 > MAX_PATH:
        raise AddressError(f"path longer than {MAX_PATH} octets", too_long=True)
    if not path:
        if not allow_null:
            raise AddressError("the null address <> is not a valid recipient")
        return ParsedPath("", parameters.strip())
    path = re.sub(f"^{_SOURCE_ROUTE}", "", path)
    if any("\udc80" <= char <= "\udcff" for char in path):
        raise AddressError("the address is not valid UTF-8")
    match = _MAILBOX[utf8].match(path)
    if not match:
        if not utf8 and not path.isascii():
            raise AddressError("non-ASCII address without SMTPUTF8")
        raise AddressError(f"<{path}> is not a valid mailbox")
    if len(match["local"].encode()) > MAX_LOCAL_PART:
        raise AddressError(f"local part longer than {MAX_LOCAL_PART} octets", too_long=True)
    if len(match["domain"].encode()) > MAX_DOMAIN:
        raise AddressError(f"domain longer than {MAX_DOMAIN} octets", too_long=True)
    if any(len(label.encode()) > 63 for label in match["domain"].split(".")):
        raise AddressError("domain label longer than 63 octets", too_long=True)
    return ParsedPath(f"{match['local']}@{match['domain'].rstrip('.')}", parameters.strip())


def parse_parameters(text: str) -> dict[str, str | None]:
    """ESMTP parameters 'KEY[=VALUE] ...' (RFC 5321 §4.1.2), keys upper-cased."""
    result: dict[str, str | None] = {}
    for item in text.split():
        key, equals, value = item.partition("=")
        if not _ESMTP_KEYWORD.match(key) or (equals and not _ESMTP_VALUE.match(value)):
            raise AddressError(f"malformed parameter {item!r}")
        if key.upper() in result:
            raise AddressError(f"parameter {key.upper()} given twice")
        result[key.upper()] = value if equals else None
    return result
