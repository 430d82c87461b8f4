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
