"""e-mail addresses: syntax, normalization, length, and that no address leaks into an error. Refusals
are checked as commands_support.py says.
"""

from __future__ import annotations

import pytest

from tests.unit.commands_support import (
    EMAIL_ACTIONS,
    MARKER,
    assert_hidden,
    email_of_length,
    problem_for,
    rejected,
    to_command,
    with_fields,
)

# --- e-mail ---


@pytest.mark.parametrize("action", EMAIL_ACTIONS)
def test_email_missing_rejected_naming_data_email(action: str) -> None:
    # Given data without an e-mail
    data = with_fields(action)
    del data["email"]

    # When / Then
    error = rejected(action, data)
    assert "required" in problem_for(error, "data.email").lower()


@pytest.mark.parametrize("action", EMAIL_ACTIONS)
@pytest.mark.parametrize(
    "bad_email",
    [f"zofia.{MARKER}@@example.com", f"zofia {MARKER}@example.com", f"zofia.{MARKER}", f"{MARKER}@localhost"],
)
def test_email_invalid_rejected_without_echoing_value(action: str, bad_email: str) -> None:
    # Given an address that is not an e-mail
    data = with_fields(action, email=bad_email)

    # When
    error = rejected(action, data)

    # Then the field and the reason are named, the address is not
    assert "email" in problem_for(error, "data.email").lower()
    assert_hidden(error, bad_email)


@pytest.mark.parametrize("action", EMAIL_ACTIONS)
def test_email_over_254_characters_rejected_naming_limit(action: str) -> None:
    # Given a well-formed address of 255 characters
    address = email_of_length(255)

    # When
    error = rejected(action, with_fields(action, email=address))

    # Then
    assert "254" in problem_for(error, "data.email")
    assert_hidden(error, address)


@pytest.mark.parametrize("action", EMAIL_ACTIONS)
def test_email_of_254_characters_accepted(action: str) -> None:
    # Given an address exactly at the limit
    address = email_of_length(254)

    # When
    command = to_command(action, with_fields(action, email=address))

    # Then
    assert command.email == address.lower()
