"""A PRC recipient with consent, a sender that does not allow relay's fixes: an advertisement
whose Subject does not start with 广告 or AD is refused at end of DATA (办法 Art. 13(3)); with
the prefix it is delivered."""

from __future__ import annotations

from relay.policy.files import policy_paths
from tests.policy.builders import message
from tests.scenarios.compliance import (
    PRC_RECIPIENT,
    add_consent,
    add_shop_sender,
    policy_config,
    records_for,
    reply_status,
    submit,
)


def test_advert_without_prefix_is_refused_and_with_prefix_delivered(make_relay, shop, sink):
    # Four adverts to one recipient in a minute: more than cadence.toml's caps allow.
    files = [path for path in policy_paths(None) if path.name != "cadence.toml"]
    relay = make_relay(policy_config(sink, shop, policy_files=files))
    add_shop_sender(relay, fixes_allowed=False)
    add_consent(relay, PRC_RECIPIENT, "CN", record_id="c-cn")

    replies, data = submit(relay, [PRC_RECIPIENT], message({"Subject": "Summer sale: 20% off"}))
    assert replies[PRC_RECIPIENT][0] == 250
    assert data is not None
    code, text = data
    assert (code, reply_status(text)) == (550, "5.7.1"), text
    assert "广告" in text
    refused = [
        r for r in records_for(relay, PRC_RECIPIENT) if r["rule_id"] == "PRC-SUBJECT-AD-PREFIX"
    ]
    assert len(refused) == 1
    assert refused[0]["action"] == "fix"
    assert refused[0]["citation"] == "互联网电子邮件服务管理办法 Art. 13(3)"
    assert refused[0]["reply"] == f"{code} {text}"
    assert refused[0]["inputs"]

    for subject in (
        "【广告】Summer sale",
        "AD: Summer sale",
        "=?utf-8?b?5bm/5ZGK77ya5aSP5a2j5L+D6ZSA?=",
    ):
        _, data = submit(relay, [PRC_RECIPIENT], message({"Subject": subject}))
        assert data is not None
        assert data[0] == 250, (subject, data)
    assert len(sink.wait_for(3)) == 3
