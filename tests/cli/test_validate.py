"""bridge validate: JSONL and CSV, with and without a groups file; exit codes 0, 1 and 2."""

from __future__ import annotations

import json

from tests.cli.conftest import contact, event, write_jsonl
from tests.conftest import PRODUCT_BASE


def _rejected(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_validate_jsonl_all_valid_exits_0(cli, tmp_path):
    # Given
    path = write_jsonl(tmp_path / "ok.jsonl", [contact(1), event(2), "", contact(3)])

    # When
    result = cli("validate", path)

    # Then
    assert result.code == 0
    assert "ok.jsonl (jsonl): 3 commands, 3 valid, 0 rejected" in result.out
    assert not (tmp_path / "ok.rejected.jsonl").exists()


def test_validate_jsonl_rejects_lines_with_reasons_and_exits_1(cli, tmp_path):
    # Given: a bad e-mail, a line that is not JSON, an unknown action, no group_key, a bad event type
    path = write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            contact(1),
            {"action": "contact.upsert", "group_key": "demo-shop", "data": {"email": "secret-person@"}},
            "{not json",
            {"action": "contact.merge", "group_key": "demo-shop", "data": {"email": "a@example.com"}},
            {"action": "contact.delete", "data": {"email": "a@example.com"}},
            event(6, contactExtEventType="BOUGHT"),
        ],
    )

    # When
    result = cli("validate", path)

    # Then
    assert result.code == 1
    assert "6 commands, 1 valid, 5 rejected" in result.out
    assert "validation" in result.out
    rejected = _rejected(tmp_path / "mixed.rejected.jsonl")
    assert [r["line"] for r in rejected] == [2, 3, 4, 5, 6]
    fields = {r["line"]: {d["field"] for d in r["details"]} for r in rejected}
    assert fields[2] == {"data.email"}
    assert fields[3] == {"line"}
    assert fields[4] == {"action"}
    assert fields[5] == {"group_key"}
    assert fields[6] == {"data.contactExtEventType"}
    assert rejected[0]["input"].startswith('{"action": "contact.upsert"')
    # The summary names fields and problems, never the values
    assert "secret-person" not in result.out


def test_validate_without_groups_file_warns_about_unknown_fields(cli, tmp_path):
    # Given: a field that only a group's field map could route, and an unknown product field
    product = {**PRODUCT_BASE, "id": "p1", "ean": "590"}
    path = write_jsonl(
        tmp_path / "c.jsonl",
        [contact(1, loyalty_tier="gold"), {"action": "products.upsert", "group_key": "g", "data": [product]}],
    )

    # When
    result = cli("validate", path)

    # Then: valid, with warnings
    assert result.code == 0, result.out
    assert "2 valid, 0 rejected" in result.out
    assert "data.loyalty_tier" in result.out and "no --groups-file" in result.out
    assert "data[0].ean" in result.out and "ignores it" in result.out


def test_validate_with_groups_file_checks_groups_and_field_maps(cli, tmp_path, sample_groups):
    # Given: demo-shop maps loyalty_tier; outlet maps nothing; "nobody" is not a group
    groups = tmp_path / "groups.json"
    groups.write_text(json.dumps(sample_groups))
    path = write_jsonl(
        tmp_path / "c.jsonl",
        [
            contact(1, loyalty_tier="gold"),
            contact(2, group="outlet", loyalty_tier="gold"),
            contact(3, group="nobody"),
        ],
    )

    # When
    result = cli("validate", path, "--groups-file", groups)

    # Then
    assert result.code == 1
    assert "1 valid, 2 rejected" in result.out
    reasons = {r["line"]: r["error_type"] for r in _rejected(tmp_path / "c.rejected.jsonl")}
    assert reasons == {2: "unmapped_field", 3: "unknown_group"}


def test_validate_csv_with_action_and_group_key(cli, tmp_path):
    # Given: a header row, properties and tags columns, a JSON cell, one bad row
    path = tmp_path / "contacts.csv"
    path.write_text(
        "email,name,tags,properties.tier,birthday,consentDetails\n"
        'a@example.com,Ann,VIP|NEW,gold,19800102,"[{""consentName"": ""news"", ""consentAccept"": true}]"\n'
        "not-an-email,Bob,,,,\n"
        "\n"
        "c@example.com,Cy,,,1990-13-45,\n"
    )

    # When
    result = cli("validate", path, "--action", "contact.upsert", "--group-key", "demo-shop")

    # Then: line numbers count the header as line 1
    assert result.code == 1
    assert "contacts.csv (csv): 3 commands, 1 valid, 2 rejected" in result.out
    rejected = _rejected(tmp_path / "contacts.rejected.jsonl")
    assert [(r["line"], r["details"][0]["field"]) for r in rejected] == [
        (3, "data.email"),
        (5, "data.birthday"),
    ]


def test_validate_csv_products_one_product_a_row(cli, tmp_path):
    path = tmp_path / "products.csv"
    path.write_text(
        "id,name,description,category,brand,url,image_url,price,sex,active\n"
        "p1,Shoe,Red shoe,Shoes,Acme,https://s.example.com/p1,https://s.example.com/i1,19.99,1,true\n"
    )

    result = cli("validate", path, "--action", "products.upsert", "--group-key", "demo-shop")

    assert result.code == 0, result.out


def test_validate_csv_stock_and_prices_one_product_a_row(cli, tmp_path):
    # Given a stock file and a price file whose empty special_price cell ends a discount
    stock = tmp_path / "stock.csv"
    stock.write_text("id,quantity\np1,0\np2,17\n")
    prices = tmp_path / "prices.csv"
    prices.write_text("id,price,special_price\np1,19.99,14.5\np2,9,\n")

    # When / Then: every row is one product, the quantity an integer, the empty cell a null
    for path, action in ((stock, "products.stock"), (prices, "products.price")):
        result = cli("validate", path, "--action", action, "--group-key", "demo-shop")
        assert result.code == 0, result.out


def test_validate_csv_price_without_the_special_price_column_is_rejected(cli, tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text("id,price\np1,19.99\n")

    result = cli("validate", path, "--action", "products.price", "--group-key", "demo-shop")

    assert result.code == 1
    assert "data[0].special_price" in result.out


def test_validate_csv_without_action_is_a_usage_error(cli, tmp_path):
    path = tmp_path / "contacts.csv"
    path.write_text("email\na@example.com\n")

    result = cli("validate", path, "--group-key", "demo-shop")

    assert result.code == 2
    assert "needs --action" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_validate_usage_errors_exit_2(cli, tmp_path):
    missing = cli("validate", tmp_path / "absent.jsonl")
    bad_groups = cli(
        "validate", write_jsonl(tmp_path / "c.jsonl", [contact(1)]), "--groups-file", tmp_path / "g.json"
    )
    unknown_option = cli("validate", "x.jsonl", "--frobnicate")

    assert (missing.code, bad_groups.code, unknown_option.code) == (2, 2, 2)
    assert "no such file" in missing.err
    assert "no such groups file" in bad_groups.err
    assert "unrecognized arguments" in unknown_option.err


def test_validate_warns_about_reused_ids(cli, tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{**event(1), "id": "o-1"}, {**event(2), "id": "o-1"}])

    result = cli("validate", path)

    assert result.code == 0
    assert "1 lines reuse the id of an earlier line (lines 2)" in result.out
