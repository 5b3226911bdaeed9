"""DKIM signing: keys (relay.signing.keys) and the signer (relay.signing.signer)."""

from __future__ import annotations

from relay.signing.keys import KeyRing, SigningKey, generate, load_keys
from relay.signing.signer import SignedBy, Signer, SignResult

__all__ = ["KeyRing", "SignResult", "SignedBy", "Signer", "SigningKey", "generate", "load_keys"]
