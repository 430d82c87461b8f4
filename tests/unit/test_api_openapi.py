"""docs/openapi.json is generated from the routes, and must not drift from them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.openapi import OPENAPI_FILE, render

ROUTES = {
    ("post", "/contacts"),
    ("delete", "/contacts"),
    ("post", "/events"),
    ("post", "/products"),
    ("post", "/products/stock"),
    ("post", "/products/price"),
    ("get", "/contact/{sm_id}"),
    ("get", "/contact_by_email"),
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return json.loads(render())


def test_api_openapi_committed_file_is_up_to_date():
    # When this fails: run `make openapi` and commit docs/openapi.json
    assert OPENAPI_FILE.read_text() == render()


def test_api_openapi_documents_every_route(document: dict[str, Any]):
    documented = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert documented == ROUTES


def test_api_openapi_documents_our_statuses_not_422(document: dict[str, Any]):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert {"200", "400", "403", "502", "503"} <= statuses, (method, path)
            assert "422" not in statuses
            assert ("404" in statuses) == (method == "get")
            assert ("413" in statuses) == (method != "get")
            assert ("409" in statuses) == (path == "/events")
            assert "Retry-After" in operation["responses"]["503"]["headers"]
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_api_openapi_has_both_url_forms_and_the_api_key(document: dict[str, Any]):
    urls = [server["url"] for server in document["servers"]]
    assert urls == ["https://{api_id}.execute-api.{region}.amazonaws.com/Production", "https://{domain}/v1"]
    assert document["components"]["securitySchemes"]["apiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
    }
    assert document["security"] == [{"apiKey": []}]


def test_api_openapi_request_bodies_describe_the_contract(document: dict[str, Any]):
    schemas = document["components"]["schemas"]
    event = schemas["EventCreateFields"]
    assert {"email", "contactExtEventType"} <= set(event["required"])
    assert event["additionalProperties"] is True  # the group's field_map may route other fields
    assert schemas["EventCreateRequest"]["additionalProperties"] is False
    params = {p["name"]: p for p in document["paths"]["/events"]["post"]["parameters"]}
    assert params["idempotency-key"]["in"] == "header"
    contact = schemas["ContactView"]["properties"]
    assert {"sm_id", "email", "tags", "properties", "createdOn", "modifiedOn", "streetAddress"} <= set(
        contact
    )


def test_api_openapi_each_write_route_takes_its_actions_request_model(document: dict[str, Any]):
    from salesmanago_bridge.actions import SPECS
    from salesmanago_bridge.commands import Action

    routes = {
        ("post", "/contacts"): Action.CONTACT_UPSERT,
        ("delete", "/contacts"): Action.CONTACT_DELETE,
        ("post", "/events"): Action.EVENT_CREATE,
        ("post", "/products"): Action.PRODUCTS_UPSERT,
    }
    schemas = document["components"]["schemas"]
    for (method, path), action in routes.items():
        body = document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
        request = SPECS[action].request
        assert request is not None
        assert body == {"$ref": f"#/components/schemas/{request.__name__}"}
        # data is documented as the action's model, open to the fields a field map routes
        data = schemas[request.__name__]["properties"]["data"]
        fields = data.get("items", data)
        fields_schema = schemas[fields["$ref"].rsplit("/", 1)[1]]
        assert set(fields_schema["properties"]) == set(SPECS[action].data.model_fields)
        assert fields_schema["additionalProperties"] is True
