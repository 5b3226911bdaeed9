"""The rewrite stage's wiring pieces: sender preferences as the plan reads them, the unsubscribe
settings, and a spooled copy taken back."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from pydantic import ValidationError

from relay.config.model import Settings
from relay.rewrite.pipeline import preferences
from relay.rewrite.plan import Fix, plan
from tests.policy.builders import SENDER


def test_us_fixes_are_opt_in_and_others_opt_out():
    needed = [("US-OPTOUT-PRESENT", "US"), ("MBP-ONECLICK", None)]
    default = plan(needed, preferences(SENDER), aligned_key=True)
    assert default.refused == ("US-OPTOUT-PRESENT",)
    opted_in = replace(SENDER, fix_us=True)
    assert plan(needed, preferences(opted_in), aligned_key=True).refused == ()
    opted_out = replace(SENDER, fix_us=True, fixes_allowed=False)
    assert plan(needed, preferences(opted_out), aligned_key=True).fixes == ()
    assert (
        Fix.UNSUBSCRIBE
        in plan([("MBP-ONECLICK", None)], preferences(SENDER), aligned_key=True).fixes
    )


def test_unsubscribe_settings_default_to_the_smtp_hostname(tmp_path):
    settings = Settings.model_validate(
        {"state_dir": str(tmp_path), "smtp": {"hostname": "mx.test"}}
    )
    assert settings.unsubscribe_host == "mx.test"
    assert settings.unsubscribe_mailto_domain == "mx.test"
    assert settings.unsubscribe_token_key_path == tmp_path / "keys" / "unsubscribe-token.key"
    given = Settings.model_validate(
        {
            "rewrite": {
                "unsubscribe_base_url": "https://U.example:8443/",
                "unsubscribe_mailto_domain": "Relay.Example.",
            }
        }
    )
    assert given.unsubscribe_host == "u.example:8443"
    assert given.unsubscribe_mailto_domain == "relay.example"
    for bad in ("http://u.example", "https://u.example/path", "u.example"):
        with pytest.raises(ValidationError):
            Settings.model_validate({"rewrite": {"unsubscribe_base_url": bad}})


def test_a_withdrawn_copy_leaves_neither_file_nor_index_row(tmp_path):
    from relay.spool.records import Envelope
    from relay.spool.store import Spool, new_queue_id

    async def run():
        spool = Spool(tmp_path / "spool")
        await spool.open()
        try:
            envelope = Envelope(
                queue_id=new_queue_id(),
                mail_from="a@shop.example",
                recipients=("b@example.de",),
                received_at=0.0,
                smtputf8=False,
                client_address="127.0.0.1",
                client_helo="h",
                auth_user=None,
            )
            await spool.accept(envelope, b"Subject: x\r\n\r\nbody\r\n")
            assert await spool.queued()
            await spool.withdraw(envelope.queue_id)
            return await spool.queued(), list((tmp_path / "spool" / "queue").iterdir())
        finally:
            await spool.close()

    assert asyncio.run(run()) == ([], [])
