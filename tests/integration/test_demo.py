"""The demo end to end, and the promise that no secret or e-mail reaches a log line or an error."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from local.demo import run_demo
from tests.conftest import EVENTS, SAMPLE_GROUPS

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def _sample_emails() -> set[str]:
    found: set[str] = set()
    for path in EVENTS.glob("*.json"):
        found |= set(EMAIL.findall(path.read_text().replace("\\", "")))
    owners = {g["owner"] for g in json.loads(SAMPLE_GROUPS.read_text()).values()}
    return {e for e in found if not e.endswith("amazonaws.com")} | owners


def _secrets() -> set[str]:
    groups = json.loads(SAMPLE_GROUPS.read_text())
    return {
        value for g in groups.values() for key in ("api_secret", "products_api_key") if (value := g.get(key))
    }


@pytest.fixture(scope="module")
def demo(request: pytest.FixtureRequest) -> Any:
    from salesmanago_bridge.dispatch import get_dispatcher
    from salesmanago_bridge.settings import get_settings

    get_settings.cache_clear()
    get_dispatcher.cache_clear()
    with pytest.MonkeyPatch.context() as patch:
        for name in ("STAGE", "SALESMANAGO_GROUPS_FILE", "DEAD_LETTER_QUEUE_URL"):
            patch.delenv(name, raising=False)
        result = run_demo()
    get_settings.cache_clear()
    get_dispatcher.cache_clear()
    return result


def test_demo_applies_good_samples_and_dead_letters_broken_ones(demo):
    assert demo.unexpected == []
    assert len(demo.dead_letters) == 4
    assert {d["reason"]["error_type"] for d in demo.dead_letters} == {
        "validation",
        "unknown_group",
        "unmapped_field",
    }


def test_demo_logs_and_errors_hold_no_secret_and_no_email(demo):
    # Given every secret of the sample groups and every e-mail of the sample events
    secrets, emails = _secrets(), _sample_emails()
    assert secrets and len(emails) >= 6
    # When everything the demo logged, printed and put in dead-letter reasons is read
    reasons = json.dumps([d["reason"] for d in demo.dead_letters])
    haystack = "\n".join([demo.logs, reasons, *demo.lines]).lower()
    # Then none of them appears in clear
    leaked = sorted(s for s in secrets | emails if s.lower() in haystack)
    assert leaked == []
    assert demo.logs.count("\n") > 10  # the handlers did log, with e-mails pseudonymized
    assert "command dead-lettered" in demo.logs


def test_demo_shows_set_as_null_of_a_product_upsert_and_tags_of_a_contact_read(demo):
    # Then a product without a special price and details clears them, as SALESmanago's library does
    upserts = [line for line in demo.lines if "POST /v3/product/upsert" in line and "SKU-200:" in line]
    assert upserts
    assert "setAsNull=['discountPrice', 'detail1', 'detail2', 'detail3', 'detail4', 'detail5']" in upserts[0]
    # and a contact read answers the tags SALESmanago keeps as contactTags
    position = next(n for n, line in enumerate(demo.lines) if "POST /api/contact/list " in line)
    assert '"tags": ["NEWSLETTER", "API"]' in demo.lines[position + 1]
