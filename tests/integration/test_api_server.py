"""`make api`'s server: HTTP in, the REST proxy event API Gateway would send, the answer out."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.api_server import SAMPLE_KEYS, ApiServer, load_key_ids, proxy_event
from local.runner import load_handler
from local.sandbox import Sandbox
from tests.integration.test_api import api_environment

DEMO_API_KEY = "demo-api-key-1"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, groups_file: Path, sandbox: Sandbox) -> Iterator[ApiServer]:
    with api_environment(monkeypatch, groups_file):
        running = ApiServer(("127.0.0.1", 0), load_handler("api").lambda_handler, load_key_ids(SAMPLE_KEYS))
        thread = threading.Thread(target=running.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        yield running
        running.shutdown()
        running.server_close()
        thread.join(timeout=5)


def send(
    server: ApiServer,
    method: str,
    path: str,
    body: Any = None,
    api_key: str | None = DEMO_API_KEY,
    **headers: str,
) -> tuple[int, dict[str, str], dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.url + path, data=data, method=method)  # noqa: S310 - local URL
    if api_key:
        request.add_header("x-api-key", api_key)
    for name, value in headers.items():
        request.add_header(name.replace("_", "-"), value)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310 - local URL
            return reply.status, dict(reply.headers), json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_api_server_serves_both_url_forms(server: ApiServer, sandbox: Sandbox):
    # When a contact is written through the stage URL and read through the custom-domain form
    status, _, written = send(
        server, "POST", "/Production/contacts", {"data": {"email": "srv@customer.example.com"}}
    )
    read_status, _, read = send(server, "GET", "/v1/contact_by_email?email=srv%40customer.example.com")
    # Then
    assert (status, read_status) == (200, 200)
    assert (
        read["contact"]["sm_id"] == written["contactId"] == sandbox.contact("srv@customer.example.com")["id"]
    )


def test_api_server_maps_the_api_key_to_its_id(server: ApiServer, sandbox: Sandbox):
    # outlet's key may not write into demo-shop: the handler saw outlet's key id
    status, _, reply = send(
        server,
        "POST",
        "/contacts",
        {"group_key": "demo-shop", "data": {"email": "x@customer.example.com"}},
        "outlet-api-key-2",
    )
    assert status == 403 and reply["error"]["code"] == "forbidden"
    assert not sandbox.requests


@pytest.mark.parametrize("api_key", [None, "not-a-key"])
def test_api_server_refuses_missing_or_unknown_key_like_api_gateway(
    server: ApiServer, sandbox: Sandbox, api_key: Any
):
    status, _, reply = send(
        server, "GET", "/contact_by_email?email=x%40customer.example.com", api_key=api_key
    )
    assert status == 403
    assert reply["error"]["message"] == "Missing or invalid API key (x-api-key)."
    assert not sandbox.requests


def test_api_server_passes_headers_both_ways(server: ApiServer):
    # Given a request header the handler checks (the Idempotency-Key, at most 255 characters)
    body = {"data": {"email": "k@customer.example.com", "contactExtEventType": "VISIT"}}
    # When / Then it reached the handler, and the handler's headers reached the client
    status, headers, reply = send(server, "POST", "/events", body, Idempotency_Key="k" * 256)
    assert status == 400 and reply["error"]["details"][0]["field"] == "Idempotency-Key"
    assert headers["Content-Type"] == "application/json"
    assert send(server, "POST", "/events", body, Idempotency_Key="visit-1")[0] == 200


def test_api_server_proxy_event_is_shaped_like_api_gateways():
    event = proxy_event(
        "get",
        "/Production/contact/abc-123?group_key=demo-shop&group_key=outlet",
        headers={"x-api-key": "k"},
        api_key="k",
        api_key_id="id-1",
    )
    assert (event["path"], event["resource"], event["httpMethod"]) == (
        "/contact/abc-123",
        "/contact/{sm_id}",
        "GET",
    )
    assert event["pathParameters"] == {"sm_id": "abc-123"}
    assert event["queryStringParameters"] == {"group_key": "outlet"}
    assert event["multiValueQueryStringParameters"] == {"group_key": ["demo-shop", "outlet"]}
    assert event["multiValueHeaders"] == {"x-api-key": ["k"]}
    assert event["requestContext"]["path"] == "/Production/contact/abc-123"
    assert event["requestContext"]["identity"]["apiKeyId"] == "id-1"
    assert event["body"] is None and event["isBase64Encoded"] is False


def test_api_server_proxy_event_encodes_binary_bodies():
    event = proxy_event("POST", "/contacts", body=b"\xff\xfe")
    assert event["isBase64Encoded"] is True and event["body"] == "//4="
