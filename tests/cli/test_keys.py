"""bridge keys: create, rotate, expire, revoke and list on moto; the index and the keys after each step."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bridge_cli import keys as keys_module

GROUPS = ("demo-shop", "outlet")
PLAN = "tenant-plan"


@pytest.fixture
def tenants(cli, aws, sample_groups: dict[str, Any], tmp_path) -> dict[str, Any]:
    """Two groups bound to no key yet, and a usage plan, in moto."""
    for group in GROUPS:
        path = tmp_path / f"{group}.json"
        path.write_text(json.dumps({**sample_groups[group], "api_key_ids": []}))
        assert cli("groups", "put", group, "--file", path).code == 0
    plan = aws.client("apigateway").create_usage_plan(name=PLAN)
    return {"plan_id": plan["id"], "api": aws.client("apigateway"), "ssm": aws.client("ssm")}


def issued(out: str) -> tuple[str, str]:
    """(id, value) of the key a create or rotate printed."""
    lines = out.splitlines()
    key_id = next(line.split()[3] for line in lines if line.startswith("created API key"))
    value = next(line.split()[1] for line in lines if line.strip().startswith("value "))
    return key_id, value


def index_entry(ssm: Any, key_id: str) -> list[str] | None:
    try:
        value = ssm.get_parameter(Name=f"/salesmanago/dev/api-keys/{key_id}")["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None
    return json.loads(value)["group_keys"]


def bound_ids(ssm: Any, group: str) -> list[str]:
    value = ssm.get_parameter(Name=f"/salesmanago/dev/groups/{group}", WithDecryption=True)["Parameter"][
        "Value"
    ]
    return json.loads(value)["api_key_ids"]


def key_state(api: Any, key_id: str) -> tuple[bool, list[str]]:
    """(enabled, usage plan names)."""
    enabled = api.get_api_key(apiKey=key_id)["enabled"]
    return enabled, [plan["name"] for plan in api.get_usage_plans(keyId=key_id)["items"]]


def test_keys_create_binds_plan_groups_and_index_and_shows_the_value_once(cli, tenants):
    # When
    created = cli(
        "keys", "create", "--group", "demo-shop", "--group", "outlet", "--usage-plan", PLAN, "--name", "erp"
    )

    # Then
    assert created.code == 0, created.err
    key_id, value = issued(created.out)
    assert key_state(tenants["api"], key_id) == (True, [PLAN])
    assert index_entry(tenants["ssm"], key_id) == ["demo-shop", "outlet"]
    assert all(bound_ids(tenants["ssm"], group) == [key_id] for group in GROUPS)
    assert created.out.count(value) == 1
    listed = cli("keys", "list")
    assert listed.code == 0 and key_id in listed.out and value not in listed.out
    assert "groups demo-shop, outlet; index ok" in listed.out


def test_keys_create_with_an_unknown_group_or_plan_makes_nothing(cli, tenants):
    # When
    no_group = cli("keys", "create", "--group", "nope", "--usage-plan", PLAN, "--name", "erp")
    no_plan = cli("keys", "create", "--group", "demo-shop", "--usage-plan", "nope", "--name", "erp")

    # Then
    assert no_group.code == no_plan.code == 2
    assert "no group nope in stage dev" in no_group.err
    assert "--usage-plan 'nope': no usage plan has that id or name (plans: tenant-plan)" in no_plan.err
    assert tenants["api"].get_api_keys()["items"] == []


def test_keys_rotate_overlaps_then_expire_retires_the_old_key(cli, tenants, monkeypatch):
    # Given
    old_id, _ = issued(
        cli("keys", "create", "--group", "demo-shop", "--usage-plan", PLAN, "--name", "erp").out
    )

    # When: rotated with a day's overlap
    rotated = cli("keys", "rotate", old_id, "--overlap", "24h")

    # Then: both keys work, bound to the same group and plan
    assert rotated.code == 0, rotated.err
    new_id, _ = issued(rotated.out)
    ssm, api = tenants["ssm"], tenants["api"]
    assert key_state(api, old_id) == key_state(api, new_id) == (True, [PLAN])
    assert index_entry(ssm, old_id) == index_entry(ssm, new_id) == ["demo-shop"]
    assert "keeps working until" in rotated.out
    assert cli("keys", "rotate", old_id, "--overlap", "1h").code == 2  # already rotated

    # When: expire runs before, then after the overlap
    early = cli("keys", "expire")
    later = keys_module.utcnow() + timedelta(hours=25)
    monkeypatch.setattr(keys_module, "utcnow", lambda: later)
    due = cli("keys", "list")
    expired = cli("keys", "expire")

    # Then: the old key is disabled, out of its plan, unbound and gone from the index
    assert "no rotated key is past its overlap" in early.out
    assert "overlap ended" in due.out and "run `bridge keys expire`" in due.out
    assert expired.code == 0 and f"retired API key {old_id}" in expired.out
    assert key_state(api, old_id) == (False, [])
    assert index_entry(ssm, old_id) is None
    assert bound_ids(ssm, "demo-shop") == [new_id]
    assert key_state(api, new_id) == (True, [PLAN])


def test_keys_rotate_without_overlap_retires_the_old_key_at_once(cli, tenants):
    old_id, _ = issued(cli("keys", "create", "--group", "outlet", "--usage-plan", PLAN, "--name", "erp").out)

    rotated = cli("keys", "rotate", old_id, "--overlap", "0")

    new_id, _ = issued(rotated.out)
    assert key_state(tenants["api"], old_id) == (False, [])
    assert bound_ids(tenants["ssm"], "outlet") == [new_id]
    assert index_entry(tenants["ssm"], old_id) is None


def test_keys_revoke_disables_unbinds_and_leaves_the_plan(cli, tenants):
    # Given
    key_id, _ = issued(
        cli("keys", "create", "--group", "demo-shop", "--usage-plan", PLAN, "--name", "erp").out
    )

    # When
    unconfirmed = cli("keys", "revoke", key_id)
    revoked = cli("keys", "revoke", key_id, "--yes")

    # Then
    assert unconfirmed.code == 2 and "--yes" in unconfirmed.err
    assert revoked.code == 0, revoked.err
    assert key_state(tenants["api"], key_id) == (False, [])
    assert index_entry(tenants["ssm"], key_id) is None
    assert bound_ids(tenants["ssm"], "demo-shop") == []
    assert cli("keys", "rotate", key_id, "--overlap", "0").code == 2  # a revoked key has no successor


class RecordingSsm:
    """moto's SSM client, recording each PutParameter (moto keeps a SecureString's key on overwrite,
    AWS does not), or refusing them all."""

    def __init__(self, client: Any, *, refuse: bool = False) -> None:
        self.client, self.puts, self.refuse = client, [], refuse

    def put_parameter(self, **kwargs: Any) -> Any:
        self.puts.append(kwargs)
        if self.refuse:
            error = {"Code": "AccessDeniedException", "Message": "not allowed"}
            raise ClientError({"Error": error}, "PutParameter")
        return self.client.put_parameter(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_keys_binding_rewrites_a_group_under_its_own_kms_key(cli, tenants, aws, services):
    # Given: a group stored under a customer key
    kms_key = aws.client("kms").create_key()["KeyMetadata"]["KeyId"]
    ssm = tenants["ssm"]
    name = "/salesmanago/dev/groups/outlet"
    value = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True, KeyId=kms_key)
    services["ssm"] = recording = RecordingSsm(ssm)

    # When
    assert cli("keys", "create", "--group", "outlet", "--usage-plan", PLAN, "--name", "erp").code == 0

    # Then: the overwrite names the group's key (without it, AWS would fall back to aws/ssm)
    (put,) = [call for call in recording.puts if call["Name"] == name]
    assert put["KeyId"] == kms_key


def test_keys_cut_short_never_leave_a_key_working(cli, tenants, services):
    # Given: a key, and then SSM refusing every write
    key_id, _ = issued(
        cli("keys", "create", "--group", "demo-shop", "--usage-plan", PLAN, "--name", "erp").out
    )
    services["ssm"] = RecordingSsm(tenants["ssm"], refuse=True)

    # When: a create cannot bind its key, a revoke cannot unbind it
    created = cli("keys", "create", "--group", "outlet", "--usage-plan", PLAN, "--name", "crm")
    revoked = cli("keys", "revoke", key_id, "--yes")

    # Then: the new key stays disabled, the revoked key is disabled all the same
    assert created.code == revoked.code == 2
    assert "stays disabled" in created.err
    new_ids = [k["id"] for k in tenants["api"].get_api_keys()["items"] if k["id"] != key_id]
    assert [key_state(tenants["api"], new_id)[0] for new_id in new_ids] == [False]
    assert key_state(tenants["api"], key_id)[0] is False


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (("rotate", "abc", "--overlap", "soon"), "--overlap 'soon': use 0, 30m, 12h, 7d or 2w"),
        (("rotate", "no/such", "--overlap", "1h"), "'no/such' is not an API key id"),
        (("revoke", "missing1", "--yes"), "API key missing1 does not exist"),
    ],
)
def test_keys_bad_input_names_the_field_and_the_problem(cli, tenants, argv, problem):
    result = cli("keys", *argv)

    assert result.code == 2
    assert problem in result.err


def test_keys_expire_leaves_other_stages_keys_alone(cli, tenants):
    # Given: another stage's key, rotated long ago
    other = tenants["api"].create_api_key(
        name="prod-erp",
        enabled=True,
        description="rotated: replaced by abc123, retire after 2020-01-01T00:00:00Z",
        tags={keys_module.STAGE_TAG: "prod"},
    )

    # When
    expired = cli("keys", "expire")

    # Then
    assert "no rotated key is past its overlap" in expired.out
    assert tenants["api"].get_api_key(apiKey=other["id"])["enabled"] is True
    assert other["id"] not in cli("keys", "list").out
