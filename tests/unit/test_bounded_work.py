"""Bounded work on hostile text: what reaches the e-mail pattern is capped, and the pattern is bounded.

CPU is measured in ``bench/hostile.py``, never here: these tests check the bounds themselves.
"""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from salesmanago_bridge.api import validation_problems
from salesmanago_bridge.commands import MAX_PATH_PART, field_path, problems_from
from salesmanago_bridge.errors import FieldProblem
from salesmanago_bridge.privacy import EMAIL_PATTERN, MAX_SCRUB_CHARS, scrub

EMAIL = "jan.kowalski@customer.example.com"


def test_scrub_caps_the_text_it_is_given():
    # Given a text far longer than any message or field path of ours
    text = "x" * 200_000
    # When / Then only the first MAX_SCRUB_CHARS characters are scanned and kept
    scrubbed = scrub(text)
    assert scrubbed.startswith("x" * MAX_SCRUB_CHARS)
    assert len(scrubbed) < MAX_SCRUB_CHARS + 40
    assert "truncated" in scrubbed


def test_scrub_still_masks_an_email_in_the_kept_part():
    assert EMAIL not in scrub(f"refused {EMAIL} " + "y" * 100_000)


def test_email_pattern_takes_a_bounded_local_part():
    # A run of 10,000 address characters before an @ is not one e-mail: at most 64 of them are taken
    match = EMAIL_PATTERN.search("a" * 10_000 + "@example.com")
    assert match is not None
    assert len(match.group()) <= 64 + len("@example.com")


def test_email_pattern_takes_a_bounded_domain():
    match = EMAIL_PATTERN.search("a@" + "b." * 5_000 + "com")
    assert match is not None
    assert len(match.group()) < 2 + 600


def test_email_cut_at_the_path_limit_is_still_masked():
    # Given an unknown key whose e-mail is cut in its domain by the 64-character limit
    key = "x" * (MAX_PATH_PART - len("jan.kowalski@cust")) + EMAIL
    # When its field path is reported
    reported = FieldProblem(field_path(("data", key)), "unknown field").as_dict()["field"]
    # Then no part of the address before the cut is left in clear
    assert "jan.kowalski@" not in reported
    assert "contact:" in reported


@pytest.mark.parametrize("size", [65, 40_000])
def test_field_path_parts_are_cut_to_64_characters(size: int):
    key = "k" * size
    path = field_path(("data", key, 3))
    assert path == "data." + "k" * MAX_PATH_PART + "…[3]"


def test_problems_from_cut_a_huge_key_before_reporting():
    # Given a model error at a 40,000-character key
    class Bucket(BaseModel):
        properties: dict[str, int]

    with pytest.raises(ValidationError) as caught:
        Bucket.model_validate({"properties": {"p" * 40_000: "not a number"}})
    # When / Then the reported path holds at most 64 characters of the key
    [problem] = problems_from(caught.value, ("data",))
    assert len(problem.field) <= len("data.properties.") + MAX_PATH_PART + 1


def test_api_validation_problems_cut_a_huge_key():
    errors = [{"type": "missing", "loc": ("body", "data", "q" * 40_000), "msg": "Field required"}]
    [problem] = validation_problems(errors)
    assert problem.field == "data." + "q" * MAX_PATH_PART + "…"
