"""Bounce parser and classifier: RFC 3464 DSNs and the non-standard formats MTAs and mailbox
providers write, each failed recipient classified with Sisimai's reason vocabulary, relay's
coarse category and Sisimai's hard/soft rule.

    message      raw bytes → the bounce's headers, explanation text, RFC 3464 groups, returned
                 message headers (robust to broken MIME)
    extract      generic extractors: RFC 3464 fields, address lines of the text, SMTP replies
    reasons      the reason table (reasons.toml, data) and the hard-bounce rule
    classifier   classify(): the records of one message
"""

from relay.feedback.bounces.classifier import classify
from relay.feedback.bounces.message import MAX_BYTES

__all__ = ["MAX_BYTES", "classify"]
