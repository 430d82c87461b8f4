"""Every command: --help with an example, --stage/--region/--profile, exit codes, one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bridge_cli.__main__ import build_parser
from tests.cli.conftest import contact, write_jsonl

COMMANDS = [
    ["validate"],
    ["send"],
    ["dlq", "summary"],
    ["dlq", "show"],
    ["dlq", "redrive"],
    ["groups", "put"],
    ["groups", "list"],
    ["groups", "show"],
    ["groups", "check"],
    ["catalogs", "list"],
    ["catalogs", "create"],
    ["invoke"],
    ["demo"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example_and_the_common_options(cli, command):
    result = cli(*command, "--help")

    assert result.code == 0
    assert "example" in result.out
    for option in ("--stage", "--region", "--profile"):
        assert option in result.out
    assert "--endpoint-url" not in result.out


def test_no_command_and_bad_arguments_are_usage_errors(cli):
    assert cli().code == 2
    assert cli("frobnicate").code == 2
    assert cli("dlq").code == 2
    assert cli("send", "--to", "nowhere", "f.jsonl").code == 2


def test_the_console_script_is_declared():
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert 'bridge = "bridge_cli.__main__:main"' in pyproject
    assert build_parser().prog == "bridge"


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    """No credentials anywhere: environment, shared files, instance metadata."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)


@pytest.mark.parametrize(
    "argv",
    [
        ["send", "c.jsonl", "--queue-url", "https://sqs.eu-central-1.amazonaws.com/123456789012/q"],
        ["send", "c.jsonl", "--stack", "prod-bridge"],
        ["dlq", "summary"],
        ["groups", "list"],
    ],
    ids=" ".join,
)
@pytest.mark.usefixtures("no_credentials")
def test_missing_credentials_is_one_clear_line(cli, tmp_path, argv):
    write_jsonl(tmp_path / "c.jsonl", [contact(1)])  # the tests run in tmp_path

    result = cli(*argv)

    assert result.code == 2
    assert result.err.startswith("bridge: error: no AWS credentials found")
    assert len(result.err.strip().splitlines()) == 1


@pytest.mark.usefixtures("no_credentials")
def test_an_unknown_profile_is_one_clear_line(cli):
    result = cli("dlq", "summary", "--profile", "nobody")

    assert result.code == 2
    assert result.err.strip() == "bridge: error: AWS profile 'nobody' is not in your AWS config"


def test_a_bad_stage_is_a_usage_error(cli):
    result = cli("groups", "list", "--stage", "../etc")

    assert result.code == 2
    assert "not a valid stage name" in result.err


def test_region_option_reaches_the_clients(cli, aws, monkeypatch):
    # Given: a queue in another region only
    us = aws.client("sqs", region_name="us-east-1")
    url = us.create_queue(QueueName="dlq-us")["QueueUrl"]

    # When
    here = cli("dlq", "summary", "--dlq-url", url)
    there = cli("dlq", "summary", "--dlq-url", url, "--region", "us-east-1")

    # Then
    assert here.code == 2 and "does not exist" in here.err
    assert there.code == 0, there.err


def test_unexpected_errors_are_one_line_without_traceback(cli, monkeypatch, tmp_path):
    def explode(args):
        raise RuntimeError("boom for someone@example.com")

    monkeypatch.setattr("bridge_cli.validate.run_validate", explode)
    path = write_jsonl(tmp_path / "c.jsonl", [contact(1)])

    result = cli("validate", path)

    assert result.code == 1
    assert "unexpected RuntimeError" in result.err and "Traceback" not in result.err
    assert "someone@example.com" not in result.err


def test_invoke_runs_one_event_through_its_handler(cli, groups_file, monkeypatch):
    from salesmanago_bridge.dispatch import get_dispatcher
    from salesmanago_bridge.settings import get_settings

    monkeypatch.setenv("SALESMANAGO_GROUPS_FILE", "")
    get_settings.cache_clear()
    get_dispatcher.cache_clear()
    try:
        event = Path(__file__).resolve().parents[2] / "events" / "sqs_contact_upsert.json"
        result = cli("invoke", event, "--groups-file", groups_file, "--stage", "test")
    finally:
        get_settings.cache_clear()
        get_dispatcher.cache_clear()

    assert result.code == 0, result.err
    assert result.out.rstrip().endswith('{\n  "batchItemFailures": []\n}')


def test_invoke_with_an_unknown_function_is_a_usage_error(cli, tmp_path):
    event = tmp_path / "odd.json"
    event.write_text("{}")

    result = cli("invoke", "no_such_function", event)

    assert result.code == 2
    assert "unknown function 'no_such_function'" in result.err


def test_demo_runs_the_samples_against_the_sandbox(cli, monkeypatch):
    # Given: the demo sets its own environment; keep it from leaking into other tests
    for name in ("STAGE", "SALESMANAGO_GROUPS_FILE", "DEAD_LETTER_QUEUE_URL", "AWS_DEFAULT_REGION"):
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])  # restored as it was after the test
        else:
            monkeypatch.delenv(name, raising=False)

    from salesmanago_bridge.dispatch import get_dispatcher
    from salesmanago_bridge.settings import get_settings

    try:
        # When
        result = cli("demo")
    finally:
        get_settings.cache_clear()
        get_dispatcher.cache_clear()

    # Then: every good sample applied, every broken one dead-lettered with its reason
    assert result.code == 0, result.out[-2000:]
    assert "every good sample was applied and every broken one dead-lettered" in result.out
