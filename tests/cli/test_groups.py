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


# ---------------------------------------------------------------- the API key index


def _index(aws: Any, stage: str = "dev") -> dict[str, list[str]]:
    ssm = aws.client("ssm")
    prefix = f"/salesmanago/{stage}/api-keys/"
    found = ssm.get_parameters_by_path(Path=prefix, Recursive=True)["Parameters"]
    assert all(p["Type"] == "String" for p in found)
    return {p["Name"].removeprefix(prefix): json.loads(p["Value"])["group_keys"] for p in found}


def _with_keys(path: Path, *key_ids: str) -> Path:
    config = json.loads(path.read_text())
    config["api_key_ids"] = list(key_ids)
    path.write_text(json.dumps(config))
    return path


def test_groups_put_writes_the_api_key_index(cli, aws, configs):
    # Given two groups sharing a key
    _with_keys(configs["demo-shop"], "key-a", "key-shared")
    _with_keys(configs["outlet"], "key-shared")

    # When
    first = cli("groups", "put", "demo-shop", "--file", configs["demo-shop"])
    second = cli("groups", "put", "outlet", "--file", configs["outlet"])

    # Then: one plain String per key, listing exactly the groups that name it
    assert first.code == 0 and second.code == 0, first.err + second.err
    assert _index(aws) == {"key-a": ["demo-shop"], "key-shared": ["demo-shop", "outlet"]}
    assert "API key key-shared: now bound to demo-shop, outlet" in second.out


def test_groups_put_overwrite_unbinds_a_dropped_key(cli, aws, configs):
    cli("groups", "put", "demo-shop", "--file", _with_keys(configs["demo-shop"], "key-a", "key-b"))

    result = cli(
        "groups", "put", "demo-shop", "--file", _with_keys(configs["demo-shop"], "key-b"), "--overwrite"
    )

    assert result.code == 0, result.err
    assert _index(aws) == {"key-b": ["demo-shop"]}
    assert "API key key-a: now bound to no group (entry removed)" in result.out


def test_groups_delete_removes_the_group_and_its_bindings(cli, aws, configs):
    cli("groups", "put", "demo-shop", "--file", _with_keys(configs["demo-shop"], "key-a", "key-shared"))
    cli("groups", "put", "outlet", "--file", _with_keys(configs["outlet"], "key-shared"))

    refused = cli("groups", "delete", "demo-shop")
    deleted = cli("groups", "delete", "demo-shop", "--yes")
    again = cli("groups", "delete", "demo-shop", "--yes")

    assert refused.code == 2 and "--yes" in refused.err
    assert deleted.code == 0, deleted.err
    assert _index(aws) == {"key-shared": ["outlet"]}
    names = [p["Name"] for p in aws.client("ssm").describe_parameters()["Parameters"]]
    assert "/salesmanago/dev/groups/demo-shop" not in names
    assert again.code == 2 and "no group demo-shop" in again.err


def test_groups_check_without_a_group_reports_drift_and_repairs_it(cli, aws, configs):
    # Given an index edited by hand behind the CLI's back: a stale entry and a missing one
    cli("groups", "put", "demo-shop", "--file", _with_keys(configs["demo-shop"], "key-a", "key-b"))
    ssm = aws.client("ssm")
    ssm.delete_parameter(Name="/salesmanago/dev/api-keys/key-b")
    ssm.put_parameter(
        Name="/salesmanago/dev/api-keys/key-gone", Value='{"group_keys": ["outlet"]}', Type="String"
    )
    clean_before = cli("groups", "check")

    # When
    repair = cli("groups", "check", "--repair")
    clean_after = cli("groups", "check")

    # Then
    assert clean_before.code == 1
    assert "DRIFT key key-b: index lists no entry; the groups say demo-shop" in clean_before.out
    assert "DRIFT key key-gone: index lists outlet; the groups say none" in clean_before.out
    assert "key-a" not in clean_before.out
    assert repair.code == 0, repair.err
    assert _index(aws) == {"key-a": ["demo-shop"], "key-b": ["demo-shop"]}
    assert clean_after.code == 0 and "every entry matches" in clean_after.out
    _no_secrets(clean_before.out, repair.out)


def test_groups_put_racing_another_put_loses_no_binding(cli, aws, configs, monkeypatch):
    # Given: while demo-shop's put derives the entry, outlet's put stores its group and its entry
    # (the interleaving that loses an update with a plain read-modify-write)
    from bridge_cli import key_index

    _with_keys(configs["demo-shop"], "key-shared")
    _with_keys(configs["outlet"], "key-shared")
    real_write = key_index._write
    raced = []

    def write_after_the_other_put(ssm: Any, settings: Any, key_id: str, groups: tuple[str, ...]) -> None:
        if not raced:
            raced.append(groups)
            monkeypatch.setattr(key_index, "_write", real_write)
            assert cli("groups", "put", "outlet", "--file", configs["outlet"]).code == 0
        real_write(ssm, settings, key_id, groups)

    monkeypatch.setattr(key_index, "_write", write_after_the_other_put)

    # When demo-shop's stale write lands last
    result = cli("groups", "put", "demo-shop", "--file", configs["demo-shop"])

    # Then its verification saw outlet's group and put it back
    assert result.code == 0, result.err
    assert raced == [("demo-shop",)]
    assert _index(aws) == {"key-shared": ["demo-shop", "outlet"]}
