"""Tenant config (groups.py): the GroupConfig rules of issue 2 §2, the local file store and the SSM store.

The SSM tests run against moto in-process: no network, no real AWS.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from salesmanago_bridge.commands import Action
from salesmanago_bridge.errors import (
    BridgeError,
    GroupConfigError,
    UnavailableError,
    UnknownGroupError,
    aws_refusal,
)
from salesmanago_bridge.groups import (
    FileGroupStore,
    GroupConfig,
    SsmGroupStore,
    group_store_for,
    parse_group_config,
)
from salesmanago_bridge.settings import Settings

SECRET = "sEcReT-qx7-api-secret"
PRODUCTS_KEY = "pRoDuCtS-qx7-key"
GROUP = "demo-shop"


def config(**override: Any) -> dict[str, Any]:
    """A valid config with recognisable secrets; ``...`` removes a field."""
    raw = {
        "client_id": "client-1",
        "api_secret": SECRET,
        "owner": "owner@shop.example.com",
        "endpoint": "https://app3.salesmanago.pl",
        "products_api_key": PRODUCTS_KEY,
        "catalog_id": "5b2f8f8e-7c1e-4d3a-9a51-0c7d8e1f2a31",
        "location": "demo_shop",
        "api_key_ids": ["key-id-1"],
        "field_map": {},
    }
    raw.update(override)
    return {key: value for key, value in raw.items() if value is not ...}


def invalid(raw: Any, group_key: str = GROUP) -> GroupConfigError:
    with pytest.raises(GroupConfigError) as info:
        parse_group_config(group_key, raw)
    return info.value


def problem_for(error: BridgeError, field: str) -> str:
    matches = [d.problem for d in error.details if d.field == field]
    assert matches, f"no detail for {field!r}; details name {[d.field for d in error.details]}"
    return matches[0]


def assert_no_secrets(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text
        assert PRODUCTS_KEY not in text


def renderings(error: BridgeError) -> list[str]:
    return [str(error), error.describe(), json.dumps(error.as_reason()), repr(error)]


# --- GroupConfig ---


def test_group_config_valid_parsed_with_defaults() -> None:
    # Given only the required fields
    raw = config(products_api_key=..., catalog_id=..., location=..., api_key_ids=..., field_map=...)

    # When
    group = parse_group_config(GROUP, raw)

    # Then
    assert group.client_id == "client-1"
    assert group.api_secret.get_secret_value() == SECRET
    assert group.products_endpoint == "https://api.salesmanago.com"
    assert group.products_api_key is None
    assert group.location is None
    assert group.api_key_ids == ()
    assert group.field_map == {}


@pytest.mark.parametrize("field", ["client_id", "api_secret", "owner", "endpoint"])
def test_group_config_required_field_missing_rejected_naming_field(field: str) -> None:
    # Given
    raw = config(**{field: ...})

    # When
    error = invalid(raw)

    # Then
    assert "required" in problem_for(error, field).lower()
    assert error.group_key == GROUP
    assert error.error_type == "invalid_group_config"


def test_group_config_owner_not_an_email_rejected() -> None:
    # Given / When
    error = invalid(config(owner="owner-at-shop"))

    # Then
    assert "email" in problem_for(error, "owner")


def test_group_config_unknown_key_rejected_naming_it_without_value() -> None:
    # Given a typo that carries a secret
    raw = config(apiSecret=SECRET)

    # When
    error = invalid(raw)

    # Then
    assert "not permitted" in problem_for(error, "apiSecret")
    assert_no_secrets(*renderings(error))


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("https://app3.salesmanago.pl", "https://app3.salesmanago.pl"),
        ("https://app3.salesmanago.pl/", "https://app3.salesmanago.pl"),
        ("https://app3.salesmanago.pl/api", "https://app3.salesmanago.pl"),
        ("https://app3.salesmanago.pl/api/", "https://app3.salesmanago.pl"),
        ("  https://www.salesmanago.com/api  ", "https://www.salesmanago.com"),
        ("http://127.0.0.1:8090/api", "http://127.0.0.1:8090"),
        ("http://localhost:8090", "http://localhost:8090"),
    ],
)
def test_group_config_endpoint_normalized_to_host(endpoint: str, expected: str) -> None:
    # Given / When
    group = parse_group_config(GROUP, config(endpoint=endpoint))

    # Then the client can append /api/... itself
    assert group.endpoint == expected


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("https://api.salesmanago.com", "https://api.salesmanago.com"),
        ("https://api.salesmanago.com/", "https://api.salesmanago.com"),
        ("https://api.salesmanago.com/v3", "https://api.salesmanago.com"),
        ("https://api.salesmanago.com/v3/", "https://api.salesmanago.com"),
        ("http://127.0.0.1:8090/v3", "http://127.0.0.1:8090"),
    ],
)
def test_group_config_products_endpoint_v3_suffix_stripped(endpoint: str, expected: str) -> None:
    # Given / When
    group = parse_group_config(GROUP, config(products_endpoint=endpoint))

    # Then the client can append /v3/... itself
    assert group.products_endpoint == expected


@pytest.mark.parametrize("field", ["endpoint", "products_endpoint"])
def test_group_config_plain_http_rejected_for_remote_host(field: str) -> None:
    # Given / When
    error = invalid(config(**{field: "http://app3.salesmanago.pl"}))

    # Then
    assert "https" in problem_for(error, field)


@pytest.mark.parametrize("field", ["endpoint", "products_endpoint"])
@pytest.mark.parametrize("url", ["app3.salesmanago.pl", "ftp://app3.salesmanago.pl", "https://", ""])
def test_group_config_endpoint_not_an_absolute_url_rejected(field: str, url: str) -> None:
    # Given / When
    error = invalid(config(**{field: url}))

    # Then
    assert "absolute URL" in problem_for(error, field)


# The catalog pattern SALESmanago's official plugin validates (salesmanago-api.md §3, corrected).
@pytest.mark.parametrize("location", ["demo_shop", "MyShop", "_eu_2", "l" * 255])
def test_group_config_location_matching_catalog_pattern_accepted(location: str) -> None:
    # Given / When
    group = parse_group_config(GROUP, config(location=location))

    # Then
    assert group.location == location


@pytest.mark.parametrize("location", ["shop-1.pl", "eu/shop", "demo shop", "1shop", "ab", "l" * 256, ""])
def test_group_config_location_no_catalog_can_have_rejected(location: str) -> None:
    # Given / When
    error = invalid(config(location=location))

    # Then the problem names the catalog pattern
    assert "a-zA-Z_" in problem_for(error, "location")


def test_group_config_field_map_sample_routes_accepted() -> None:
    # Given the routes of the sample group
    field_map = {
        "contact.upsert": {"loyalty_tier": "properties.loyalty"},
        "event.create": {"order_channel": "detail5"},
        "products.upsert": {"ean": "detail4"},
    }

    # When
    group = parse_group_config(GROUP, config(field_map=field_map))

    # Then
    assert group.routes_for(Action.CONTACT_UPSERT) == {"loyalty_tier": "properties.loyalty"}
    assert group.routes_for(Action.EVENT_CREATE) == {"order_channel": "detail5"}
    assert group.routes_for(Action.PRODUCTS_UPSERT) == {"ean": "detail4"}
    assert group.routes_for(Action.CONTACT_DELETE) == {}


@pytest.mark.parametrize(
    ("action", "target", "allowed"),
    [
        ("contact.upsert", "loyalty", ["properties.<name>", "name", "tags"]),
        ("event.create", "detail21", ["detail20", "description"]),
        ("products.upsert", "customDetails.detail4", ["detail4", "sub_category"]),
    ],
)
def test_group_config_field_map_unknown_target_rejected_naming_allowed_targets(
    action: str, target: str, allowed: list[str]
) -> None:
    # Given / When
    error = invalid(config(field_map={action: {"source_x": target}}))

    # Then
    problem = problem_for(error, "field_map")
    assert f"'{target}'" in problem and "source_x" in problem
    for name in allowed:
        assert name in problem


@pytest.mark.parametrize(
    ("action", "source"),
    [("contact.upsert", "name"), ("event.create", "detail5"), ("products.upsert", "price")],
)
def test_group_config_field_map_remapping_contract_field_rejected(action: str, source: str) -> None:
    # Given a route whose source the contract already takes
    target = "properties.x" if action == "contact.upsert" else "detail1"
    raw = config(field_map={action: {source: target}})

    # When
    error = invalid(raw)

    # Then
    problem = problem_for(error, "field_map")
    assert f"'{source}'" in problem and "contract field" in problem


@pytest.mark.parametrize("action", ["event.create", "products.upsert", "contact.delete"])
def test_group_config_field_map_properties_target_only_for_contact_upsert(action: str) -> None:
    # Given a properties.<name> target for an action without properties
    raw = config(field_map={action: {"loyalty_tier": "properties.loyalty"}})

    # When
    error = invalid(raw)

    # Then
    assert "properties.loyalty" in problem_for(error, "field_map")


def test_group_config_field_map_bare_properties_prefix_rejected() -> None:
    # Given / When
    error = invalid(config(field_map={"contact.upsert": {"loyalty_tier": "properties."}}))

    # Then
    assert problem_for(error, "field_map")


def test_group_config_field_map_unknown_action_rejected() -> None:
    # Given / When
    error = invalid(config(field_map={"contact.merge": {"a": "name"}}))

    # Then a detail names the field map and lists the actions
    problems = [d.problem for d in error.details if d.field.startswith("field_map")]
    assert problems and "contact.upsert" in problems[0]


def test_group_config_repr_and_str_hide_secrets() -> None:
    # Given
    group = parse_group_config(GROUP, config())

    # When
    texts = [repr(group), str(group), group.model_dump_json(), str(group.model_dump())]

    # Then
    assert_no_secrets(*texts)
    assert group.products_api_key is not None
    assert group.products_api_key.get_secret_value() == PRODUCTS_KEY


@pytest.mark.parametrize(
    "override",
    [
        {"owner": "not-an-email"},
        {"endpoint": SECRET},
        {"products_endpoint": PRODUCTS_KEY},
        {"client_id": SECRET * 4},
        {"api_secret": [SECRET]},
        {"products_api_key": {"key": PRODUCTS_KEY}},
        {"location": SECRET},
    ],
    ids=[
        "owner",
        "secret-as-endpoint",
        "key-as-products-endpoint",
        "long-client-id",
        "secret-list",
        "key-object",
        "secret-as-location",
    ],
)
def test_parse_group_config_error_names_fields_without_values(override: dict[str, Any]) -> None:
    # Given a config with one bad field (sometimes holding a secret)
    raw = config(**override)

    # When
    error = invalid(raw)

    # Then the field is named, no value is repeated
    field = next(iter(override))
    assert problem_for(error, field)
    assert_no_secrets(*renderings(error))
    assert "not-an-email" not in str(error)


def test_parse_group_config_lists_every_bad_field() -> None:
    # Given / When
    error = invalid(config(client_id="", owner="x", endpoint="ftp://x", location="BAD-1"))

    # Then
    assert {d.field for d in error.details} == {"client_id", "owner", "endpoint", "location"}


@pytest.mark.parametrize("raw", [None, [], "config", 42])
def test_parse_group_config_not_an_object_rejected(raw: Any) -> None:
    # Given / When
    error = invalid(raw)

    # Then
    assert error.details


# --- FileGroupStore ---


@pytest.fixture
def groups_path(tmp_path: Path, sample_groups: dict[str, dict[str, Any]]) -> Path:
    path = tmp_path / "groups.json"
    path.write_text(json.dumps(sample_groups))
    return path


def test_file_group_store_get_known_group_returns_config(groups_path: Path) -> None:
    # Given
    store = FileGroupStore(groups_path)

    # When
    group = store.get("demo-shop")

    # Then
    assert isinstance(group, GroupConfig)
    assert group.client_id == "demo-client-1"
    assert group.routes_for(Action.CONTACT_UPSERT) == {"loyalty_tier": "properties.loyalty"}


def test_file_group_store_sample_outlet_endpoints_normalized(groups_path: Path) -> None:
    # Given the sample group with pasted /api and /v3 suffixes
    store = FileGroupStore(groups_path)

    # When
    group = store.get("outlet")

    # Then
    assert group.endpoint == "http://127.0.0.1:8090"
    assert group.products_endpoint == "http://127.0.0.1:8090"


def test_file_group_store_unknown_group_rejected_naming_group(groups_path: Path) -> None:
    # Given
    store = FileGroupStore(groups_path)

    # When
    with pytest.raises(UnknownGroupError) as info:
        store.get("no-such-shop")

    # Then
    assert "no-such-shop" in str(info.value)
    assert info.value.group_key == "no-such-shop"
    assert info.value.error_type == "unknown_group"
    assert info.value.retryable is False


def test_file_group_store_invalid_config_rejected_naming_field(
    tmp_path: Path, sample_groups: dict[str, dict[str, Any]]
) -> None:
    # Given a group whose endpoint is not a URL
    sample_groups["demo-shop"]["endpoint"] = "app3.salesmanago.pl"
    path = tmp_path / "groups.json"
    path.write_text(json.dumps(sample_groups))

    # When
    with pytest.raises(GroupConfigError) as info:
        FileGroupStore(path).get("demo-shop")

    # Then
    assert problem_for(info.value, "endpoint")
    assert info.value.group_key == "demo-shop"
    assert "demo-secret-do-not-use-1" not in str(info.value)


@pytest.mark.parametrize("content", [None, "{not json", "[1, 2]"], ids=["missing", "not-json", "not-object"])
def test_file_group_store_unreadable_file_rejected(tmp_path: Path, content: str | None) -> None:
    # Given
    path = tmp_path / "groups.json"
    if content is not None:
        path.write_text(content)

    # When
    with pytest.raises(GroupConfigError) as info:
        FileGroupStore(path).get("demo-shop")

    # Then
    assert "groups file" in str(info.value)


def test_file_group_store_missing_file_names_the_variable(tmp_path: Path) -> None:
    # Given / When
    with pytest.raises(GroupConfigError) as info:
        FileGroupStore(tmp_path / "absent.json").get("demo-shop")

    # Then
    assert problem_for(info.value, "SALESMANAGO_GROUPS_FILE")


def test_file_group_store_group_keys_for_api_key(groups_path: Path) -> None:
    # Given
    store = FileGroupStore(groups_path)

    # When / Then
    assert store.group_keys_for_api_key("demo-key-id-1") == ["demo-shop"]
    assert store.group_keys_for_api_key("outlet-key-id-2") == ["outlet"]
    assert store.group_keys_for_api_key("unknown-key") == []


def test_file_group_store_group_keys_for_api_key_shared_by_groups(
    tmp_path: Path, sample_groups: dict[str, dict[str, Any]]
) -> None:
    # Given one API key allowed on both groups
    for group in sample_groups.values():
        group["api_key_ids"] = ["shared-key"]
    path = tmp_path / "groups.json"
    path.write_text(json.dumps(sample_groups))

    # When
    keys = FileGroupStore(path).group_keys_for_api_key("shared-key")

    # Then
    assert keys == ["demo-shop", "outlet"]


def test_file_group_store_caches_until_force_fetch(groups_path: Path, sample_groups: dict[str, Any]) -> None:
    # Given a store that has read the file once
    store = FileGroupStore(groups_path)
    assert store.get("demo-shop").client_id == "demo-client-1"
    sample_groups["demo-shop"]["client_id"] = "rotated-client"
    groups_path.write_text(json.dumps(sample_groups))

    # When
    cached = store.get("demo-shop")
    fetched = store.get("demo-shop", force_fetch=True)

    # Then
    assert cached.client_id == "demo-client-1"
    assert fetched.client_id == "rotated-client"


def test_file_group_store_force_fetch_sees_new_group(
    groups_path: Path, sample_groups: dict[str, Any]
) -> None:
    # Given a group added after the first read
    store = FileGroupStore(groups_path)
    store.get("demo-shop")
    sample_groups["new-shop"] = sample_groups["outlet"]
    groups_path.write_text(json.dumps(sample_groups))

    # When
    group = store.get("new-shop", force_fetch=True)

    # Then
    assert group.client_id == "outlet-client-2"


def test_group_store_for_file_setting_returns_file_store(groups_path: Path) -> None:
    # Given / When
    store = group_store_for(Settings.from_env({"SALESMANAGO_GROUPS_FILE": str(groups_path)}))

    # Then
    assert isinstance(store, FileGroupStore)
    assert store.get("outlet").client_id == "outlet-client-2"


def test_group_store_for_without_file_returns_ssm_store() -> None:
    # Given / When
    store = group_store_for(Settings.from_env({"STAGE": "test"}))

    # Then
    assert isinstance(store, SsmGroupStore)


# --- SsmGroupStore ---


@pytest.fixture(scope="module")
def moto_ssm() -> Iterator[Any]:
    """One moto SSM for the module: starting moto per test would cost most of the suite's time."""
    from moto import mock_aws

    with mock_aws():
        import boto3

        yield boto3.client("ssm", region_name="eu-central-1")


@pytest.fixture
def ssm(moto_ssm: Any) -> Iterator[Any]:
    """An empty SSM; Powertools' parameter cache and providers are reset around each test."""
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    yield moto_ssm
    names = [p["Name"] for p in moto_ssm.describe_parameters(MaxResults=50)["Parameters"]]
    if names:
        moto_ssm.delete_parameters(Names=names)
    parameters.clear_caches()


def put_group(ssm: Any, name: str, value: Any) -> None:
    text = value if isinstance(value, str) else json.dumps(value)
    ssm.put_parameter(Name=name, Value=text, Type="SecureString", Overwrite=True)


@pytest.fixture
def ssm_store() -> SsmGroupStore:
    return SsmGroupStore(Settings.from_env({"STAGE": "test"}))


def test_ssm_group_store_get_reads_secure_string(ssm: Any, ssm_store: SsmGroupStore) -> None:
    # Given
    put_group(ssm, "/salesmanago/test/groups/demo-shop", config())

    # When
    group = ssm_store.get("demo-shop")

    # Then
    assert group.client_id == "client-1"
    assert group.api_secret.get_secret_value() == SECRET


def test_ssm_group_store_parameter_prefix_override_used(ssm: Any) -> None:
    # Given
    put_group(ssm, "/custom/prefix/groups/demo-shop", config(client_id="custom"))
    store = SsmGroupStore(
        Settings.from_env({"STAGE": "test", "SALESMANAGO_PARAMETER_PREFIX": "/custom/prefix/"})
    )

    # When
    group = store.get("demo-shop")

    # Then
    assert group.client_id == "custom"


def test_ssm_group_store_unknown_group_rejected_naming_group(ssm: Any, ssm_store: SsmGroupStore) -> None:
    # Given only another group exists
    put_group(ssm, "/salesmanago/test/groups/demo-shop", config())

    # When
    with pytest.raises(UnknownGroupError) as info:
        ssm_store.get("no-such-shop")

    # Then
    assert "no-such-shop" in str(info.value)
    assert info.value.group_key == "no-such-shop"


def test_ssm_group_store_invalid_json_rejected_as_group_config_error(
    ssm: Any, ssm_store: SsmGroupStore
) -> None:
    # Given
    put_group(ssm, "/salesmanago/test/groups/demo-shop", '{"client_id": "c", "api_secret": "' + SECRET)

    # When
    with pytest.raises(GroupConfigError) as info:
        ssm_store.get("demo-shop")

    # Then
    assert info.value.group_key == "demo-shop"
    assert SECRET not in str(info.value)


def test_ssm_group_store_invalid_config_rejected_naming_field(ssm: Any, ssm_store: SsmGroupStore) -> None:
    # Given
    put_group(ssm, "/salesmanago/test/groups/demo-shop", config(endpoint="http://app3.salesmanago.pl"))

    # When
    with pytest.raises(GroupConfigError) as info:
        ssm_store.get("demo-shop")

    # Then
    assert "https" in problem_for(info.value, "endpoint")
    assert_no_secrets(*renderings(info.value))


def test_ssm_group_store_caches_until_force_fetch(ssm: Any, ssm_store: SsmGroupStore) -> None:
    # Given a config read once, then changed in SSM
    name = "/salesmanago/test/groups/demo-shop"
    put_group(ssm, name, config(client_id="before"))
    assert ssm_store.get("demo-shop").client_id == "before"
    put_group(ssm, name, config(client_id="after"))

    # When
    cached = ssm_store.get("demo-shop")
    fetched = ssm_store.get("demo-shop", force_fetch=True)

    # Then
    assert cached.client_id == "before"
    assert fetched.client_id == "after"


def test_ssm_group_store_group_keys_for_api_key_read_from_its_index_entry(
    ssm: Any, ssm_store: SsmGroupStore
) -> None:
    # Given the key's index entry (a plain String) and groups that would say otherwise
    put_group(ssm, "/salesmanago/test/groups/outlet", config(api_key_ids=["key-a"]))
    ssm.put_parameter(
        Name="/salesmanago/test/api-keys/key-a", Value='{"group_keys": ["demo-shop"]}', Type="String"
    )

    # When / Then: the entry decides which groups are candidates; the groups are never scanned
    assert ssm_store.group_keys_for_api_key("key-a") == ["demo-shop"]
    assert ssm_store.group_keys_for_api_key("key-c") == []


# ---- SALESmanago hosts only (issue 16) ------------------------------------------------------------
@pytest.mark.parametrize("field", ["endpoint", "products_endpoint"])
@pytest.mark.parametrize(
    "url",
    [
        "https://attacker.example.com",
        "https://salesmanago.pl.attacker.example.com",
        "https://app3.salesmanago.pl.attacker.example.com/api",
        "https://attacker-salesmanago.pl",
        "https://app3.salesmanago.pl@attacker.example.com",
        "https://user:pw@app3.salesmanago.pl",
        "https://app3.salesmanago.pl:8443",
        "https://app3.salesmanago.pl/other/path",
        "https://app3.salesmanago.pl/api?redirect=https://attacker.example.com",
        "https://10.0.0.5",
        "https://169.254.169.254/latest",
    ],
)
def test_group_config_endpoint_must_be_a_salesmanago_host(field: str, url: str) -> None:
    # Given a config whose endpoint is not a SALESmanago host (or carries userinfo, a port, a path)
    # When / Then it is refused, naming the field and the rule, never the value
    error = invalid(config(**{field: url}))
    problem = problem_for(error, field)
    assert "salesmanago" in problem.lower()
    assert "attacker" not in " ".join(renderings(error))


@pytest.mark.parametrize(
    "url", ["https://www.salesmanago.com", "https://app1.salesmanago.pl", "https://App3.SALESmanago.pl/api"]
)
def test_group_config_documented_hosts_accepted(url: str) -> None:
    assert parse_group_config(GROUP, config(endpoint=url)).endpoint.lower() == url.lower().removesuffix(
        "/api"
    )


@pytest.mark.parametrize("url", ["http://127.0.0.1:8090", "http://localhost:8090/api", "http://[::1]:8090"])
def test_group_config_loopback_refused_unless_allowed(url: str) -> None:
    # A deployed stack: loopback is refused (the setting is off by default)
    error = invalid_with(config(endpoint=url), allow_loopback=False)
    assert "loopback" in problem_for(error, "endpoint")
    # The demo, make api, the tests and the e2e run turn the setting on
    assert parse_group_config(GROUP, config(endpoint=url), allow_loopback=True).endpoint.startswith("http://")


def invalid_with(raw: Any, **options: Any) -> GroupConfigError:
    with pytest.raises(GroupConfigError) as info:
        parse_group_config(GROUP, raw, **options)
    return info.value


def test_settings_allow_loopback_is_off_by_default() -> None:
    assert Settings.from_env({}).allow_loopback is False
    assert Settings.from_env({"SALESMANAGO_ALLOW_LOOPBACK": "true"}).allow_loopback is True


def test_ssm_group_store_invalid_index_entry_rejected(ssm: Any, ssm_store: SsmGroupStore) -> None:
    # Given
    ssm.put_parameter(
        Name="/salesmanago/test/api-keys/key-a", Value='{"group_keys": ["no spaces"]}', Type="String"
    )

    # When
    with pytest.raises(GroupConfigError) as info:
        ssm_store.group_keys_for_api_key("key-a")

    # Then
    assert "group_keys" in str(info.value)


def test_ssm_group_store_refused_read_names_the_aws_call_and_code(
    ssm: Any, ssm_store: SsmGroupStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given SSM refusing every read, as IAM does when the policy lacks the action
    from aws_lambda_powertools.utilities import parameters
    from botocore.exceptions import ClientError

    def refuse(self: Any, name: str, **kwargs: Any) -> str:
        error = {"Error": {"Code": "AccessDeniedException", "Message": f"not allowed on {name} {SECRET}"}}
        raise ClientError(error, "GetParameter")

    monkeypatch.setattr(parameters.SSMProvider, "_get", refuse)

    # When
    with pytest.raises(UnavailableError) as by_key:
        ssm_store.group_keys_for_api_key("key-a")
    with pytest.raises(UnavailableError) as by_group:
        ssm_store.get("demo-shop")

    # Then: transient, naming the operation and AWS's code, never AWS's message
    for error in (by_key.value, by_group.value):
        assert error.retryable
        assert "(GetParameter: AccessDeniedException)" in error.describe()
        assert SECRET not in error.describe()
        assert aws_refusal(error) == {
            "aws_operation": "GetParameter",
            "aws_error_code": "AccessDeniedException",
        }
