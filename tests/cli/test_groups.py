"""bridge groups: put, list, show and check; secrets never printed; check against the sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SECRETS = (
    "demo-secret-do-not-use-1",
    "demo-products-key-1",
    "outlet-secret-do-not-use-2",
    "outlet-products-key-2",
)


@pytest.fixture
def configs(tmp_path: Path, sample_groups: dict[str, Any], sandbox: Any) -> dict[str, Path]:
    """One config file per sample group, pointed at the running sandbox."""
    files = {}
    for key, config in sample_groups.items():
        config["endpoint"] = config["products_endpoint"] = sandbox.url
        files[key] = tmp_path / f"{key}.json"
        files[key].write_text(json.dumps(config))
    return files


def _no_secrets(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def test_groups_put_stores_a_secure_string_at_the_stage_path(cli, aws, configs):
    # When
    result = cli("groups", "put", "demo-shop", "--file", configs["demo-shop"], "--stage", "prod")

    # Then
    assert result.code == 0, result.err
    parameter = aws.client("ssm").get_parameter(
        Name="/salesmanago/prod/groups/demo-shop", WithDecryption=True
    )
    assert parameter["Parameter"]["Type"] == "SecureString"
    assert json.loads(parameter["Parameter"]["Value"])["api_secret"] == "demo-secret-do-not-use-1"
    assert "stored group demo-shop at /salesmanago/prod/groups/demo-shop" in result.out
    _no_secrets(result.out, result.err)


def test_groups_put_refuses_to_overwrite_unless_asked(cli, aws, configs):
    cli("groups", "put", "demo-shop", "--file", configs["demo-shop"])

    again = cli("groups", "put", "demo-shop", "--file", configs["demo-shop"])
    overwritten = cli("groups", "put", "demo-shop", "--file", configs["demo-shop"], "--overwrite")

    assert again.code == 2 and "--overwrite" in again.err
    assert overwritten.code == 0 and "version 2" in overwritten.out


def test_groups_put_validates_the_config_and_field_map(cli, aws, tmp_path, sample_groups):
    # Given: a bad field-map target, a missing owner, and the secret left in
    config = dict(sample_groups["demo-shop"])
    config.pop("owner")
    config["field_map"] = {"contact.upsert": {"tier": "loyalty"}}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(config))

    # When
    result = cli("groups", "put", "demo-shop", "--file", path)

    # Then: each problem named, nothing stored, no secret echoed
    assert result.code == 1
    assert "owner: Field required" in result.out
    assert "target 'loyalty' of 'tier' is not one of" in result.out
    _no_secrets(result.out, result.err)
    assert aws.client("ssm").describe_parameters()["Parameters"] == []


def test_groups_list_and_show_mask_secrets(cli, aws, configs):
    # Given
    for key, path in configs.items():
        cli("groups", "put", key, "--file", path)

    # When
    listing = cli("groups", "list")
    shown = cli("groups", "show", "outlet")

    # Then
    assert listing.code == shown.code == 0
    assert "2 groups in stage dev (/salesmanago/dev/groups/)" in listing.out
    assert "demo-shop" in listing.out and "outlet-client-2" in listing.out
    assert json.loads(shown.out.split("\n", 1)[1])["api_secret"] == "********"
    assert '"products_api_key": "********"' in shown.out
    _no_secrets(listing.out, shown.out, listing.err, shown.err)


def test_groups_show_an_unknown_group_is_one_line(cli, aws):
    result = cli("groups", "show", "nobody")

    assert result.code == 2
    assert result.err.strip() == (
        "bridge: error: no group nobody in stage dev (/salesmanago/dev/groups/nobody); "
        "`bridge groups list` shows them"
    )


def test_groups_show_flags_an_invalid_stored_config(cli, aws):
    aws.client("ssm").put_parameter(
        Name="/salesmanago/dev/groups/broken",
        Type="SecureString",
        Value=json.dumps({"api_secret": "s3cr3t-value"}),
    )

    result = cli("groups", "show", "broken")

    assert result.code == 1
    assert "INVALID" in result.out and "client_id: Field required" in result.out
    assert "s3cr3t-value" not in result.out


def test_groups_check_against_the_sandbox_passes(cli, aws, configs):
    cli("groups", "put", "demo-shop", "--file", configs["demo-shop"])

    result = cli("groups", "check", "demo-shop")

    assert result.code == 0, result.out + result.err
    assert "API v2" in result.out and "credentials and owner accepted" in result.out
    assert "API key accepted, 1 catalog(s)" in result.out
    assert "found: demo_shop (location demo_shop)" in result.out
    assert "every check passed" in result.out
    _no_secrets(result.out, result.err)


def test_groups_check_reports_wrong_credentials(cli, aws, configs):
    # Given: a rotated secret and products key that were not updated in the config
    config = json.loads(configs["outlet"].read_text())
    config["api_secret"] = "an-old-secret"
    config["products_api_key"] = "an-old-products-key"
    configs["outlet"].write_text(json.dumps(config))
    cli("groups", "put", "outlet", "--file", configs["outlet"])

    # When
    result = cli("groups", "check", "outlet")

    # Then: both APIs fail clearly; the catalog is not checked
    assert result.code == 1
    lines = {" ".join(line.split()[:2]): line for line in result.out.splitlines() if "  " in line}
    v2, v3 = lines["API v2"], lines["API v3"]
    assert "FAILED" in v2 and "[auth]" in v2 and "Not authenticated" in v2
    assert "FAILED" in v3 and "refused the API key" in v3
    assert "not checked" in result.out
    assert "an-old-secret" not in result.out and "an-old-products-key" not in result.out


def test_groups_check_reports_a_missing_catalog(cli, aws, configs):
    config = json.loads(configs["demo-shop"].read_text())
    config["catalog_id"] = "00000000-0000-4000-8000-00000000dead"
    configs["demo-shop"].write_text(json.dumps(config))
    cli("groups", "put", "demo-shop", "--file", configs["demo-shop"])

    result = cli("groups", "check", "demo-shop")

    assert result.code == 1
    assert "00000000-0000-4000-8000-00000000dead" in result.out
    assert "not among the account's catalogs (5b2f8f8e-7c1e-4d3a-9a51-0c7d8e1f2a31)" in result.out


def test_groups_check_reads_a_local_groups_file(cli, groups_file):
    result = cli("groups", "check", "outlet", "--groups-file", groups_file)

    assert result.code == 0, result.out + result.err
    assert str(groups_file) in result.out


def test_groups_check_an_unknown_group_in_a_file_is_one_line(cli, groups_file):
    result = cli("groups", "check", "nobody", "--groups-file", groups_file)

    assert result.code == 2
    assert "unknown group 'nobody'" in result.err
