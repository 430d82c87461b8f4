"""Pseudonyms (privacy.py): keyed, so candidate e-mails reveal nobody; read lazily; `extra` scrubbed."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterator

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from salesmanago_bridge import privacy
from salesmanago_bridge.observability import logger
from salesmanago_bridge.settings import get_settings

SECRET_NAME = "salesmanago/test/pseudonym-key"
KEY = "k" * 64
TARGET = "anna.kowalska@example.com"
# What someone holding the logs can try: every address of a leaked list or a guessable pattern.
CANDIDATES = [
    f"{first}.{last}@example.com" for first in ("anna", "jan", "ewa") for last in ("kowalska", "nowak")
]


def unsalted_sha256(email: str) -> str:
    """The scheme before the HMAC: anyone can compute it."""
    return "contact:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:12]


def dictionary_attack(pseudonym: str) -> list[str]:
    """Candidates whose pseudonym, computed without the key in every way one could, is ``pseudonym``."""
    found = []
    for candidate in CANDIDATES:
        digest = hashlib.sha256(candidate.encode()).hexdigest()
        unkeyed = {
            unsalted_sha256(candidate),
            "contact:" + digest[: privacy.PSEUDONYM_HEX_DIGITS],
            "contact:" + hmac.new(b"", candidate.encode(), hashlib.sha256).hexdigest()[:16],
        }
        if pseudonym in unkeyed:
            found.append(candidate)
    return found


@pytest.fixture
def deployed_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A deployment's key in Secrets Manager (moto), named in the settings as the template does."""
    with mock_aws():
        boto3.client("secretsmanager").create_secret(Name=SECRET_NAME, SecretString=KEY)
        monkeypatch.setenv("PSEUDONYM_KEY_SECRET_ID", SECRET_NAME)
        get_settings.cache_clear()
        parameters.clear_caches()
        privacy.use_key_loader(None)
        yield KEY
    monkeypatch.delenv("PSEUDONYM_KEY_SECRET_ID")
    get_settings.cache_clear()
    parameters.clear_caches()
    privacy.use_key_loader(None)


def test_pseudonym_old_scheme_reveals_the_email_new_scheme_does_not(deployed_key: str) -> None:
    # Given: the pseudonym of one person as each scheme logs it
    old = unsalted_sha256(TARGET)
    new = privacy.pseudonymize(TARGET)

    # When: someone hashes a list of candidates
    revealed_by_old = dictionary_attack(old)
    revealed_by_new = dictionary_attack(new)

    # Then: the old one names her, the new one nobody; only the key links the new one to her
    assert revealed_by_old == [TARGET]
    assert revealed_by_new == []
    assert new == "contact:" + hmac.new(KEY.encode(), TARGET.encode(), hashlib.sha256).hexdigest()[:16]


def test_pseudonym_is_stable_across_case_and_spaces_and_differs_per_email(deployed_key: str) -> None:
    assert privacy.pseudonymize(" Anna.Kowalska@Example.com ") == privacy.pseudonymize(TARGET)
    assert privacy.pseudonymize("jan.nowak@example.com") != privacy.pseudonymize(TARGET)


def test_pseudonym_key_is_read_once_and_cached(deployed_key: str) -> None:
    # Given: a first pseudonym read the key
    first = privacy.pseudonymize(TARGET)

    # When: the secret disappears (a cached read does not notice)
    boto3.client("secretsmanager").delete_secret(SecretId=SECRET_NAME, ForceDeleteWithoutRecovery=True)

    # Then
    assert privacy.pseudonymize(TARGET) == first


def test_pseudonym_without_readable_key_reveals_nothing_and_does_not_fail(
    deployed_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Given: no such secret
    boto3.client("secretsmanager").delete_secret(SecretId=SECRET_NAME, ForceDeleteWithoutRecovery=True)

    # When
    with caplog.at_level(logging.WARNING, logger=privacy.__name__):
        pseudonyms = {privacy.pseudonymize(TARGET), privacy.pseudonymize("jan.nowak@example.com")}

    # Then: one placeholder, one warning (the second line did not ask again), no e-mail anywhere
    assert pseudonyms == {privacy.UNKEYED_PSEUDONYM}
    assert [r.getMessage() for r in caplog.records] == [
        "pseudonym key unavailable (GetParameterError): e-mails are written as contact:unkeyed for 30.0s"
    ]


def test_pseudonym_key_loader_swaps_and_restores() -> None:
    # Given
    previous = privacy.use_key_loader(lambda: "other-key")

    # When
    swapped = privacy.pseudonymize(TARGET)
    privacy.use_key_loader(previous)

    # Then
    assert swapped == "contact:" + hmac.new(b"other-key", TARGET.encode(), hashlib.sha256).hexdigest()[:16]
    assert privacy.pseudonymize(TARGET) != swapped


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_log_extra_fields_are_scrubbed_like_messages() -> None:
    # Given: the bridge's logger, formatted as it is in Lambda
    capture = _Capture()
    capture.setFormatter(logger.registered_formatter)
    logging.getLogger(logger.name).addHandler(capture)

    # When: e-mails come in as `extra`, flat and nested
    try:
        logger.warning(
            "refused",
            extra={"email": TARGET, "reply": {"contacts": [f"owner {TARGET}"]}, "count": 2},
        )
    finally:
        logging.getLogger(logger.name).removeHandler(capture)

    # Then
    (line,) = capture.lines
    assert TARGET not in line and privacy.pseudonymize(TARGET) in line
    assert '"count":2' in line
