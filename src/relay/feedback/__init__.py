"""What comes back from receivers (DESIGN `relay.feedback`): bounces (RFC 3464 DSNs and the
non-standard formats MTAs and providers write), complaint reports (ARF, RFC 5965 / RFC 6591)
and mail to the relay-hosted unsubscribe mailbox; each becomes suppression entries.

    model        BounceRecord, ComplaintRecord: what the parsers return
    bounces      classify(): DSNs and non-standard bounces -> one record per recipient
    complaints   parse(): ARF (RFC 5965, RFC 6591) and provider variants -> one per recipient
    suppress     suppress(): the audit record, then the suppression entry (every source)
    mailboxes    which addresses the feedback listener receives mail for
    listener     the SMTP listener on [feedback] listen: RCPT checks, DATA into the inbox
    inbox        durable message files (new/, unparsed/) between the 250 and the processing
    processor    the background worker: inbox message -> suppressions, under [feedback] policy
    delivery     relay's own deliveries: unknown recipients suppressed, delivered ones counted
"""
