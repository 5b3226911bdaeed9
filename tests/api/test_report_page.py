"""`GET /report` of a running relay, over real HTTP: the compliance officer's page about the
story of tests/api/test_audit_api.py (`mailed`), rendered by a real browser (headless
Chromium): the rules that acted with their counts and citations, bob's unsubscribe honoured at
the next mailing, the rates against the thresholds, the daily chart; values escaped."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.api.story import ANN, BOB

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
RULE_ACTIONS = ("reject", "defer", "fix", "warn")


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"
    profile.mkdir()
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        timeout=120,
    )


def text_of(markup: str) -> str:
    """The visible text, one space between what tags separate."""
    markup = re.sub(r"<(style|title)[^>]*>.*?</\1>", " ", markup, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


@pytest.mark.parametrize(
    ("role", "status"), [("operator", 200), ("compliance", 200), ("mailer", 403), (None, 401)]
)
def test_readers_may_read_the_report_and_nobody_else(admin_api, role, status):
    with admin_api.as_role(role) as client:
        response = client.get("/report")
    assert response.status_code == status, response.text
    if status == 200:
        assert response.headers["content-type"].startswith("text/html")
    else:
        assert response.json()["status"] == status


def test_values_are_escaped_and_the_period_is_checked(admin_api):
    with admin_api.as_role("compliance") as client:
        page = client.get("/report", params={"sender_id": "<b>x</b>&"}).text
        assert "&lt;b&gt;x&lt;/b&gt;&amp;" in page
        assert "<b>" not in page
        assert "<script" not in page
        assert not re.search(r"(src|href)=", page)  # nothing fetched from elsewhere
        bad = client.get(
            "/report", params={"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
        )
        assert bad.status_code == 422, bad.text
        assert client.get("/report", params={"days": 0}).status_code == 422


def test_report_renders_the_story_in_a_browser(mailed, tmp_path):
    with mailed.api.as_role("compliance") as client:
        response = client.get("/report", params={"sender_id": "shop", "days": 7})
    assert response.status_code == 200, response.text
    page = tmp_path / "report.html"
    page.write_text(response.text, encoding="utf-8")

    screenshot = tmp_path / "report.png"
    shot = chromium(
        tmp_path, f"--screenshot={screenshot}", "--window-size=1280,2400", page.as_uri()
    )
    assert screenshot.exists(), shot.stderr.decode(errors="replace")
    image = screenshot.read_bytes()
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(image) > 20_000  # a page of tables and a chart, not a blank one
    width, height = int.from_bytes(image[16:20], "big"), int.from_bytes(image[20:24], "big")
    assert (width, height) == (1280, 2400)

    dumped = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert dumped.returncode == 0, dumped.stderr.decode(errors="replace")
    dom = dumped.stdout.decode("utf-8")
    text = text_of(dom)
    assert "Compliance report" in text
    assert "Sender shop" in text

    # Every rule that acted on the shop's mail, with its count, as the audit log has it.
    records = [r for r in mailed.records() if r["sender_id"] == "shop"]
    acted = Counter(
        (r["rule_id"], r["action"])
        for r in records
        if r["rule_id"] is not None and r["action"] in RULE_ACTIONS
    )
    refused = Counter(
        (r["rule_id"], r["action"])
        for r in records
        if r["rule_id"] is not None and r["action"] in RULE_ACTIONS and r["reply"] is not None
    )
    assert (mailed.refusing_rule(ANN), "reject") in acted
    for (rule_id, action), count in acted.items():
        row = f"{rule_id} {action} {count} {refused[rule_id, action]} "
        assert row in text, (row, text)

    # bob's unsubscribe, honoured at the next mailing's RCPT.
    assert "1 request(s); 1 followed by a refused attempt" in text
    bob = mailed.api.hasher.hash(BOB)
    assert f"{bob[:16]}…" in text

    # Rates against the thresholds: 4 accepted, 2 delivered, 1 hard bounce (25 %).
    assert "period 4 2 0 0.00% below the target 1 25.00% at or above 2%" in text
    assert "0.1%" in text
    assert "0.3%" in text

    # The chart: today's bars, 4 accepted and 2 refused by a rule.
    assert dom.count("<svg") == 1
    assert re.search(r"<title>\d{4}-\d\d-\d\d: 4 accepted</title>", dom)
    assert re.search(r"<title>\d{4}-\d\d-\d\d: 2 refused</title>", dom)
    assert "In the period: 4 recipients accepted, 2 refused by a rule." in text
