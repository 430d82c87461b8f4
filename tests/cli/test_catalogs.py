"""bridge catalogs: list and create a group's product catalogs, against the sandbox (API v3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from salesmanago_bridge.catalogs import read_catalog

DEMO_CATALOG = "5b2f8f8e-7c1e-4d3a-9a51-0c7d8e1f2a31"


@pytest.fixture
def groups_json(tmp_path: Path, sample_groups: dict[str, Any], sandbox: Any) -> Path:
    """The sample groups, pointed at the running sandbox."""
    for config in sample_groups.values():
        config["endpoint"] = config["products_endpoint"] = sandbox.url
    path = tmp_path / "groups.json"
    path.write_text(json.dumps(sample_groups))
    return path


def test_catalogs_list_shows_the_account_catalogs_and_marks_the_group_one(cli, groups_json):
    # When
    result = cli("catalogs", "list", "--group", "demo-shop", "--groups-file", groups_json)

    # Then
    assert result.code == 0, result.out + result.err
    assert "1 catalog(s) of at most 5" in result.out
    [line] = [line for line in result.out.splitlines() if DEMO_CATALOG in line]
    assert "location demo_shop" in line and "the group's catalog_id" in line
    assert "demo-products-key-1" not in result.out + result.err


def test_catalogs_create_then_list_shows_it(cli, groups_json, sandbox):
    # When
    created = cli(
        "catalogs", "create", "--group", "demo-shop", "--groups-file", groups_json,
        "--name", "Shop EU", "--currency", "EUR", "--location", "ShopEU",
    )  # fmt: skip
    listed = cli("catalogs", "list", "--group", "demo-shop", "--groups-file", groups_json)

    # Then SALESmanago got the library's body, and the output says what to put in the config
    assert created.code == 0, created.out + created.err
    [request] = sandbox.requests_to("/v3/product/catalogUpsert")
    assert request.body == {
        "catalogName": "Shop EU",
        "currency": "EUR",
        "location": "ShopEU",
        "setAsDefault": False,
    }
    [new] = [c for c in sandbox.catalogs() if c["location"] == "ShopEU"]
    assert f'"catalog_id": "{new["catalogId"]}"' in created.out and '"location": "ShopEU"' in created.out
    assert "2 catalog(s)" in listed.out and new["catalogId"] in listed.out


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        ("--location", "shop-1.pl", "--location"),
        ("--currency", "euro", "--currency"),
        ("--name", "", "--name"),
    ],
)
def test_catalogs_create_bad_value_is_a_usage_error_naming_the_option(
    cli, groups_json, sandbox, option, value, named
):
    # Given
    argv = {"--name": "Shop", "--currency": "EUR", "--location": "ShopEU", option: value}

    # When
    result = cli(
        "catalogs", "create", "--group", "demo-shop", "--groups-file", groups_json,
        *[part for pair in argv.items() for part in pair],
    )  # fmt: skip

    # Then nothing reached SALESmanago
    assert result.code == 2
    assert named in result.err
    assert not sandbox.requests_to("catalogUpsert")


def test_catalogs_create_over_the_account_limit_reports_salesmanago_problem(cli, groups_json, sandbox):
    # Given the account already has its 5 catalogs
    for n in range(4):
        cli(
            "catalogs", "create", "--group", "demo-shop", "--groups-file", groups_json,
            "--name", f"C{n}", "--currency", "EUR", "--location", f"shop_{n}",
        )  # fmt: skip

    # When
    result = cli(
        "catalogs", "create", "--group", "demo-shop", "--groups-file", groups_json,
        "--name", "One too many", "--currency", "EUR", "--location", "shop_x",
    )  # fmt: skip

    # Then
    assert result.code == 1
    assert "catalog not created" in result.out and "reason 19" in result.out


def test_catalogs_list_without_products_key_is_a_usage_error(cli, groups_json):
    # Given
    groups = json.loads(groups_json.read_text())
    del groups["demo-shop"]["products_api_key"]
    groups_json.write_text(json.dumps(groups))

    # When
    result = cli("catalogs", "list", "--group", "demo-shop", "--groups-file", groups_json)

    # Then
    assert result.code == 2 and "no products_api_key" in result.err


@pytest.mark.parametrize(
    "raw",
    [
        {"catalogId": "c1", "name": "Main", "currency": "PLN", "location": "MyShop"},
        {
            "catalogId": "c1",
            "catalogName": "Main",
            "currency": "PLN",
            "location": "MyShop",
            "setAsDefault": True,
        },
    ],
    ids=["name", "catalogName"],
)
def test_read_catalog_takes_either_name_key(raw: dict[str, Any]) -> None:
    # Given / When
    catalog = read_catalog(raw)

    # Then
    assert catalog is not None and (catalog.name, catalog.location) == ("Main", "MyShop")
