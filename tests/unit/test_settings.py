"""Settings (settings.py): the defaults of DESIGN.md "Settings", parsing, and errors naming the variable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from salesmanago_bridge.errors import PermanentError
from salesmanago_bridge.settings import Settings, SettingsError, get_settings

# DESIGN.md "Settings": variable → (attribute, default).
DESIGN_DEFAULTS = {
    "STAGE": ("stage", "dev"),
    "SALESMANAGO_GROUPS_FILE": ("groups_file", None),
    "SALESMANAGO_CONNECT_TIMEOUT_S": ("connect_timeout_s", 3.05),
    "SALESMANAGO_READ_TIMEOUT_S": ("read_timeout_s", 10.0),
    "SALESMANAGO_MAX_RETRIES": ("max_retries", 3),
    "MAX_PARALLEL_REQUESTS": ("max_parallel_requests", 4),
    "CONTACT_BATCH_SIZE": ("contact_batch_size", 400),
    "EVENT_BATCH_SIZE": ("event_batch_size", 1000),
    "PRODUCT_BATCH_SIZE": ("product_batch_size", 100),
    "DEADLINE_MARGIN_MS": ("deadline_margin_ms", 3000),
    "IDEMPOTENCY_TABLE_NAME": ("idempotency_table_name", None),
    "IDEMPOTENCY_TTL_S": ("idempotency_ttl_s", 86400),
    "DEAD_LETTER_QUEUE_URL": ("dead_letter_queue_url", None),
    "MAX_RECEIVE_COUNT": ("max_receive_count", 5),
}
OPTIONAL_VARIABLES = (
    "SALESMANAGO_PARAMETER_PREFIX",
    "SALESMANAGO_GROUPS_FILE",
    "IDEMPOTENCY_TABLE_NAME",
    "DEAD_LETTER_QUEUE_URL",
)


def settings_error(environ: dict[str, str]) -> SettingsError:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(environ)
    return info.value


@pytest.mark.parametrize(("variable", "expected"), list(DESIGN_DEFAULTS.items()), ids=list(DESIGN_DEFAULTS))
def test_settings_empty_environment_uses_design_default(variable: str, expected: tuple[str, object]) -> None:
    # Given / When
    settings = Settings.from_env({})

    # Then
    attribute, default = expected
    assert getattr(settings, attribute) == default


def test_settings_empty_environment_parameter_prefix_defaults_to_stage_path() -> None:
    # Given / When
    settings = Settings.from_env({})

    # Then
    assert settings.parameter_prefix == "/salesmanago/dev"
    assert settings.parameters_max_age_s == 300


def test_settings_values_parsed_from_strings() -> None:
    # Given every variable as the text a Lambda environment holds
    environ = {
        "STAGE": "prod",
        "SALESMANAGO_GROUPS_FILE": "/tmp/groups.json",
        "SALESMANAGO_CONNECT_TIMEOUT_S": "1.5",
        "SALESMANAGO_READ_TIMEOUT_S": "20",
        "SALESMANAGO_MAX_RETRIES": "0",
        "MAX_PARALLEL_REQUESTS": "8",
        "CONTACT_BATCH_SIZE": "100",
        "EVENT_BATCH_SIZE": "500",
        "PRODUCT_BATCH_SIZE": "50",
        "DEADLINE_MARGIN_MS": "0",
        "IDEMPOTENCY_TABLE_NAME": "bridge-idempotency",
        "IDEMPOTENCY_TTL_S": "3600",
        "DEAD_LETTER_QUEUE_URL": "https://sqs.eu-central-1.amazonaws.com/123456789012/dlq",
        "MAX_RECEIVE_COUNT": "3",
        "POWERTOOLS_PARAMETERS_MAX_AGE": "60",
    }

    # When
    settings = Settings.from_env(environ)

    # Then
    assert settings.stage == "prod"
    assert settings.groups_file == Path("/tmp/groups.json")
    assert settings.connect_timeout_s == 1.5
    assert settings.read_timeout_s == 20.0
    assert settings.max_retries == 0
    assert settings.max_parallel_requests == 8
    assert (settings.contact_batch_size, settings.event_batch_size, settings.product_batch_size) == (
        100,
        500,
        50,
    )
    assert settings.deadline_margin_ms == 0
    assert settings.idempotency_table_name == "bridge-idempotency"
    assert settings.idempotency_ttl_s == 3600
    assert settings.dead_letter_queue_url == "https://sqs.eu-central-1.amazonaws.com/123456789012/dlq"
    assert settings.max_receive_count == 3
    assert settings.parameters_max_age_s == 60


def test_settings_unrelated_variables_ignored() -> None:
    # Given a real Lambda environment's noise
    environ = {"AWS_REGION": "eu-central-1", "PATH": "/usr/bin", "_HANDLER": "app.lambda_handler"}

    # When
    settings = Settings.from_env(environ)

    # Then
    assert settings == Settings.from_env({})


def test_settings_empty_optional_variables_are_unset() -> None:
    # Given CloudFormation's rendering of unset optional parameters
    environ = dict.fromkeys(OPTIONAL_VARIABLES, "")

    # When
    settings = Settings.from_env(environ)

    # Then
    assert settings.parameter_prefix_override is None
    assert settings.parameter_prefix == "/salesmanago/dev"
    assert settings.groups_file is None
    assert settings.idempotency_table_name is None
    assert settings.dead_letter_queue_url is None


def test_settings_empty_variables_with_defaults_use_defaults() -> None:
    # Given every variable that has a default rendered as ""
    environ = {variable: "" for variable in DESIGN_DEFAULTS if variable not in OPTIONAL_VARIABLES}

    # When
    settings = Settings.from_env(environ)

    # Then empty means unset, and unset means the default
    assert settings == Settings.from_env({})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("STAGE", "prod stage"),
        ("STAGE", "s" * 33),
        ("SALESMANAGO_CONNECT_TIMEOUT_S", "0"),
        ("SALESMANAGO_CONNECT_TIMEOUT_S", "fast"),
        ("SALESMANAGO_READ_TIMEOUT_S", "121"),
        ("SALESMANAGO_MAX_RETRIES", "-1"),
        ("SALESMANAGO_MAX_RETRIES", "11"),
        ("SALESMANAGO_MAX_RETRIES", "2.5"),
        ("MAX_PARALLEL_REQUESTS", "0"),
        ("CONTACT_BATCH_SIZE", "1001"),
        ("EVENT_BATCH_SIZE", "1001"),
        ("EVENT_BATCH_SIZE", "0"),
        ("PRODUCT_BATCH_SIZE", "101"),
        ("DEADLINE_MARGIN_MS", "-1"),
        ("IDEMPOTENCY_TTL_S", "59"),
        ("MAX_RECEIVE_COUNT", "0"),
        ("POWERTOOLS_PARAMETERS_MAX_AGE", "-5"),
    ],
)
def test_settings_invalid_value_rejected_naming_variable(variable: str, value: str) -> None:
    # Given / When
    error = settings_error({variable: value})

    # Then the detail names the environment variable, not the attribute
    assert [d.field for d in error.details] == [variable]
    assert variable in str(error)
    assert error.details[0].problem


def test_settings_several_invalid_values_all_named() -> None:
    # Given / When
    error = settings_error({"PRODUCT_BATCH_SIZE": "500", "SALESMANAGO_MAX_RETRIES": "many", "STAGE": "a b"})

    # Then
    assert {d.field for d in error.details} == {"PRODUCT_BATCH_SIZE", "SALESMANAGO_MAX_RETRIES", "STAGE"}


def test_settings_error_is_permanent() -> None:
    # Given / When
    error = settings_error({"CONTACT_BATCH_SIZE": "lots"})

    # Then
    assert isinstance(error, PermanentError)
    assert error.retryable is False


def test_settings_parameter_prefix_follows_stage() -> None:
    # Given / When
    settings = Settings.from_env({"STAGE": "prod"})

    # Then
    assert settings.parameter_prefix == "/salesmanago/prod"


@pytest.mark.parametrize("override", ["/tenants/prod", "/tenants/prod/", "/tenants/prod//"])
def test_settings_parameter_prefix_override_trailing_slash_stripped(override: str) -> None:
    # Given / When
    settings = Settings.from_env({"STAGE": "prod", "SALESMANAGO_PARAMETER_PREFIX": override})

    # Then
    assert settings.parameter_prefix == "/tenants/prod"


def test_settings_group_parameter_name_under_prefix() -> None:
    # Given
    default = Settings.from_env({"STAGE": "test"})
    overridden = Settings.from_env({"STAGE": "test", "SALESMANAGO_PARAMETER_PREFIX": "/custom/"})

    # When / Then
    assert default.group_parameter_name("demo-shop") == "/salesmanago/test/groups/demo-shop"
    assert overridden.group_parameter_name("demo-shop") == "/custom/groups/demo-shop"


def test_settings_from_env_reads_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given
    monkeypatch.setenv("STAGE", "staging")
    monkeypatch.setenv("EVENT_BATCH_SIZE", "250")

    # When
    settings = Settings.from_env()

    # Then
    assert settings.stage == "staging"
    assert settings.event_batch_size == 250


@pytest.fixture
def fresh_get_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("fresh_get_settings")
def test_get_settings_read_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given settings read once
    monkeypatch.setenv("STAGE", "first")
    first = get_settings()
    monkeypatch.setenv("STAGE", "second")

    # When
    again = get_settings()

    # Then
    assert again is first
    assert again.stage == "first"


def test_settings_frozen() -> None:
    # Given
    settings = Settings.from_env({})

    # When / Then
    with pytest.raises(ValueError, match="frozen"):
        settings.stage = "prod"  # type: ignore[misc]


def test_settings_error_says_it_is_the_environment_not_a_group() -> None:
    error = settings_error({"SALESMANAGO_MAX_RETRIES": "many"})
    assert error.error_type == "invalid_settings"
    assert not error.retryable
