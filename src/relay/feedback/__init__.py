"""What comes back from receivers (DESIGN `relay.feedback`): bounces (RFC 3464 DSNs and the
non-standard formats MTAs and providers write), complaint reports (ARF, RFC 5965 / RFC 6591)
and mail to the relay-hosted unsubscribe mailbox; each becomes suppression entries.

    model        BounceRecord, ComplaintRecord: what the parsers return
    bounces      classify(): DSNs and non-standard bounces -> one record per recipient
    complaints   parse(): ARF (RFC 5965, RFC 6591) and provider variants -> one per recipient
    suppress     suppress(): the audit record, then the suppression entry (every source)
"""
