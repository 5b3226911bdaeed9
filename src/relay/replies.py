"""SMTP replies relay sends, as named constants with the RFC that gives them their meaning.

Every 2xx/4xx/5xx reply carries an RFC 3463 enhanced status code (RFC 2034 requires it once
ENHANCEDSTATUSCODES is advertised); `with_enhanced_code` supplies the class default for the few
replies that aiosmtpd produces itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "ADDRESS_TOO_LONG",
    "AUTH_REQUIRED",
    "BAD_ADDRESS_SYNTAX",
    "BAD_SEQUENCE",
    "BARE_LINE_ENDING",
    "DNS_TEMPORARY",
    "LINE_TOO_LONG",
    "MESSAGE_TOO_BIG",
    "NUL_IN_DATA",
    "PARAMETER_NOT_IMPLEMENTED",
    "QUEUED",
    "RECIPIENT_OK",
    "SENDER_OK",
    "SPOOL_FAILURE",
    "SYNTAX_ERROR",
    "TOO_MANY_RECIPIENTS",
    "UNKNOWN_MAILBOX",
    "UTF8_RECIPIENT_WITHOUT_SMTPUTF8",
    "UTF8_SENDER_WITHOUT_SMTPUTF8",
    "Reply",
    "with_enhanced_code",
]


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    status: str
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.status} {self.text}"

    def but(self, text: str) -> Reply:
        """The same code and status with a more specific text."""
        return Reply(self.code, self.status, text)


# RFC 5321 §4.2.2 / RFC 3463 §3.1: success.
SENDER_OK = Reply(250, "2.1.0", "Sender OK")
RECIPIENT_OK = Reply(250, "2.1.5", "Recipient OK")
QUEUED = Reply(250, "2.0.0", "Queued")
# RFC 3463 §3.6 X.5.3 / RFC 5321 §4.5.3.1.10: too many recipients; the client retries the rest.
TOO_MANY_RECIPIENTS = Reply(452, "4.5.3", "Too many recipients")
# RFC 3463 X.3.0: local trouble; the message was not accepted, the client keeps it and retries.
SPOOL_FAILURE = Reply(451, "4.3.0", "Could not store the message, try again later")
# RFC 3207 §4 / RFC 4954 §6: submission needs authentication.
AUTH_REQUIRED = Reply(530, "5.7.0", "Authentication required")
# RFC 3463 X.1.1: no mailbox of that name here (the feedback listener's unknown addresses).
UNKNOWN_MAILBOX = Reply(550, "5.1.1", "No such mailbox here")
# RFC 3463 X.4.3: a DNS lookup a decision needs failed temporarily; the client retries.
DNS_TEMPORARY = Reply(451, "4.4.3", "DNS lookup failed temporarily, try again later")
# RFC 3463 X.3.4 / RFC 1870: message size.
MESSAGE_TOO_BIG = Reply(552, "5.3.4", "Message size exceeds fixed limit")
# RFC 3463 X.1.3, X.5.4: address syntax and length.
BAD_ADDRESS_SYNTAX = Reply(501, "5.1.3", "Bad address syntax")
ADDRESS_TOO_LONG = Reply(501, "5.5.4", "Address too long")
# RFC 6531 §3.5: non-ASCII address without SMTPUTF8.
UTF8_SENDER_WITHOUT_SMTPUTF8 = Reply(
    550, "5.6.7", "Non-ASCII sender address requires the SMTPUTF8 parameter"
)
UTF8_RECIPIENT_WITHOUT_SMTPUTF8 = Reply(
    553, "5.6.7", "Non-ASCII recipient address requires SMTPUTF8 in MAIL FROM"
)
# RFC 5321 §4.1.4, §2.3.8 and COMPLIANCE RFC-5321-DATA-END: only CRLF line endings, no NUL.
BARE_LINE_ENDING = Reply(
    554, "5.5.2", "Bare CR or LF in message data; every line must end with CRLF"
)
NUL_IN_DATA = Reply(554, "5.6.0", "NUL byte in message data")
# RFC 5322 §2.1.1, RFC 5321 §4.5.3.1.6: a line is at most 998 octets plus CRLF.
LINE_TOO_LONG = Reply(
    554, "5.6.0", "Line longer than 998 octets (RFC 5322 2.1.1); encode long lines, e.g. base64"
)
# RFC 5321 §3.3, §4.1.1.2: command sequencing and parameters.
BAD_SEQUENCE = Reply(503, "5.5.1", "Bad sequence of commands")
SYNTAX_ERROR = Reply(501, "5.5.4", "Syntax error in parameters or arguments")
PARAMETER_NOT_IMPLEMENTED = Reply(555, "5.5.4", "Parameter not recognized or not implemented")

_DEFAULT_STATUS = {
    2: "2.0.0",
    4: "4.0.0",
    5: "5.0.0",
}
_SPECIFIC_STATUS = {
    421: "4.3.2",
    451: "4.3.0",
    452: "4.3.1",
    500: "5.5.2",
    501: "5.5.4",
    502: "5.5.1",
    503: "5.5.1",
    504: "5.5.4",
    530: "5.7.0",
    552: "5.3.4",
    554: "5.5.0",
    555: "5.5.4",
}
_HAS_STATUS = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}\b")


def with_enhanced_code(reply: str) -> str:
    """Add the class's enhanced status code to a reply line that lacks one (RFC 2034 §3)."""
    code, sep, text = reply[:3], reply[3:4], reply[4:]
    if not code.isdigit() or code[0] not in "245" or code == "220" or sep not in (" ", ""):
        return reply
    if _HAS_STATUS.match(text):
        return reply
    status = _SPECIFIC_STATUS.get(int(code), _DEFAULT_STATUS[int(code[0])])
    text = re.sub(r"^Error:\s*", "", text)
    return f"{code} {status} {text}".rstrip()
