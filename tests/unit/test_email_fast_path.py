"""The plain-ASCII fast path for e-mails agrees with email-validator on every input it takes."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from salesmanago_bridge.fields import _PLAIN_EMAIL, _validate_email


def reference(value: str) -> str | None:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def ours(value: str) -> str | None:
    try:
        return _validate_email(value)
    except ValueError:
        return None


@settings(max_examples=500, deadline=None)
@given(st.from_regex(_PLAIN_EMAIL, fullmatch=True))
@example("0@00--0.AA")  # IDNA: no "--" in a label's 3rd and 4th place (found by this test)
@example("a@xn--80ak6aa92e.com")
@example("jan@my--shop.pl")
def test_email_fast_path_matches_email_validator_on_plain_addresses(value: str):
    # Accepted and refused alike; a plain address keeps its ASCII form (email-validator would
    # turn an xn-- domain into Unicode, changing the contact and the ids derived from it)
    expected = reference(value)
    if expected is None or "xn--" not in value.lower():
        assert ours(value) == expected
    else:
        local, _, domain = value.rpartition("@")
        assert ours(value) == f"{local}@{domain.lower()}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a@xn--bcher-kva.com", "a@xn--bcher-kva.com"), ("a@XN--80AK6AA92E.com", "a@xn--80ak6aa92e.com")],
)
def test_email_punycode_domain_keeps_its_ascii_form(value: str, expected: str):
    assert ours(value) == expected


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40).map(lambda s: s + "@" + s[::-1] + ".com"))
def test_email_fast_path_matches_email_validator_on_other_text(value: str):
    assert ours(value) == reference(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Jan.Kowalski@Shop.Example.COM", "Jan.Kowalski@shop.example.com"),
        ("a@b.test", None),  # special-use domain
        ("a..b@c.com", None),
        ("a@b.c", "a@b.c"),  # accepted by email-validator, so by us
        ("jörg@bücher.de", "jörg@bücher.de"),  # not plain: email-validator decides
    ],
)
def test_email_examples(value: str, expected: str | None):
    assert ours(value) == expected == reference(value)
