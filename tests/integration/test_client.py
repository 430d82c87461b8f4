"""The SALESmanago client against the sandbox: each outcome the API can produce, classified."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from local.sandbox import Fault, Sandbox
from salesmanago_bridge.client import SalesmanagoClient, sign
from salesmanago_bridge.errors import (
    AuthError,
    ErrorType,
    GroupConfigError,
    OutcomeUnknownError,
    SalesmanagoRejectedError,
    SalesmanagoTimeoutError,
    ThrottledError,
    UnavailableError,
)
from salesmanago_bridge.groups import FileGroupStore, GroupConfig
from salesmanago_bridge.settings import Settings
from tests.conftest import FakeClock

CONTACT = {"contact": {"email": "client.test@customer.example.com", "name": "Client Test"}}
EVENT = {
    "email": "client.test@customer.example.com",
    "contactEvent": {"contactExtEventType": "PURCHASE", "date": 1764095400000, "value": 10.5},
}
PRODUCT = {
    "productId": "SKU-1",
    "name": "Shirt",
    "description": "A shirt",
    "mainCategory": "Shirts",
    "productUrl": "https://shop.example.com/p/1",
    "mainImageUrl": "https://cdn.shop.example.com/1.jpg",
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def group(groups_file: Path) -> GroupConfig:
    return FileGroupStore(groups_file).get("demo-shop")


def make_client(clock: FakeClock, **overrides: Any) -> SalesmanagoClient:
    settings = Settings.model_validate({"SALESMANAGO_READ_TIMEOUT_S": 0.3, **overrides})
    return SalesmanagoClient(settings, clock=clock)


def test_client_v2_upsert_success_returns_reply_and_signs_request(
    sandbox: Sandbox, group: GroupConfig, clock
):
    # Given a healthy sandbox
    client = make_client(clock)
    # When a contact is upserted
    reply = client.call_v2(group, "contact/upsert", CONTACT, action="contact.upsert")
    # Then SALESmanago's id comes back and the request carries the body auth
    assert reply["success"] is True and reply["contactId"]
    body = sandbox.requests[-1].body
    expected_sha = hashlib.sha1(
        (body["apiKey"] + "demo-client-1" + "demo-secret-do-not-use-1").encode(), usedforsecurity=False
    ).hexdigest()
    assert body["sha"] == expected_sha == sign(body["apiKey"], "demo-client-1", "demo-secret-do-not-use-1")
    assert body["clientId"] == "demo-client-1"
    assert body["owner"] == "owner@demo-shop.example.com"
    assert body["requestTime"] == int(clock.now * 1000)  # milliseconds
    assert "demo-secret-do-not-use-1" not in json.dumps(body)


def test_client_fresh_api_key_per_request(sandbox: Sandbox, group: GroupConfig, clock):
    client = make_client(clock)
    client.call_v2(group, "contact/upsert", CONTACT, action="contact.upsert")
    client.call_v2(group, "contact/upsert", CONTACT, action="contact.upsert")
    keys = [r.body["apiKey"] for r in sandbox.requests]
    assert len(set(keys)) == 2


def test_client_success_false_is_permanent_rejection_with_message(
    sandbox: Sandbox, group: GroupConfig, clock
):
    # Given SALESmanago answers success:false
    sandbox.inject(Fault("success_false", message="Contact limit reached"))
    # When / Then the error is permanent and carries SALESmanago's message
    with pytest.raises(SalesmanagoRejectedError) as caught:
        make_client(clock).call_v2(group, "contact/upsert", CONTACT, action="contact.upsert")
    assert caught.value.error_type is ErrorType.SALESMANAGO_REJECTED
    assert not caught.value.retryable
    assert "Contact limit reached" in str(caught.value)


def test_client_wrong_secret_is_auth_error(sandbox: Sandbox, group: GroupConfig, clock):
    # Given a group whose secret SALESmanago does not know
    wrong = group.model_copy(update={"api_secret": SecretStr("not-the-secret")})
    # When / Then
    with pytest.raises(AuthError) as caught:
        make_client(clock).call_v2(wrong, "contact/upsert", CONTACT, action="contact.upsert")
    assert caught.value.error_type is ErrorType.AUTH
    assert "not-the-secret" not in str(caught.value)


def test_client_429_with_retry_after_is_honoured_then_succeeds(sandbox: Sandbox, group: GroupConfig, clock):
    # Given one 429 with Retry-After: 2
    sandbox.inject(Fault("status", status=429, retry_after=2))
    # When
    reply = make_client(clock).call_v2(group, "contact/upsert", CONTACT, action="contact.upsert")
    # Then the client waited exactly what the server asked, then succeeded
    assert reply["success"] is True
    assert clock.slept == [2]
    assert [r.status for r in sandbox.requests] == [429, 200]


def test_client_429_longer_than_budget_is_not_slept_on(sandbox: Sandbox, group: GroupConfig, clock):
    # Given a Retry-After longer than the configured cap
    sandbox.inject(Fault("status", status=429, retry_after=120, times=5))
    # When / Then the client answers throttled at once instead of sleeping two minutes
    with pytest.raises(ThrottledError) as caught:
        make_client(clock, SALESMANAGO_MAX_RETRY_AFTER_S=5).call_v2(
            group, "contact/upsert", CONTACT, action="contact.upsert"
        )
    assert clock.slept == []
    assert caught.value.retry_after_s == 120
    assert len(sandbox.requests) == 1


def test_client_retry_after_capped_by_time_left(sandbox: Sandbox, group: GroupConfig, clock):
    # Given only 4 s left in the invocation (requests take up to ~3.35 s with these timeouts)
    sandbox.inject(Fault("status", status=429, retry_after=3, times=5))
    client = make_client(clock)
    client.budget.set_remaining(4000)
    # When / Then the 3 s wait does not fit: answer throttled without sleeping
    with pytest.raises(ThrottledError):
        client.call_v2(group, "contact/upsert", CONTACT, action="contact.upsert")
    assert clock.slept == []


def test_client_5xx_then_success_is_retried_with_backoff(sandbox: Sandbox, group: GroupConfig, clock):
    # Given two 503s then a healthy reply
    sandbox.inject(Fault("status", status=503, times=2))
    # When
    reply = make_client(clock).call_v2(group, "contact/upsert", CONTACT, action="contact.upsert")
    # Then it retried twice: urllib3 retries the first time at once, then backs off
    # 0.25 s x 2^1 plus up to 0.25 s of jitter
    assert reply["success"] is True
    assert [r.status for r in sandbox.requests] == [503, 503, 200]
    assert len(clock.slept) == 1
    assert 0.5 <= clock.slept[0] <= 0.75


def test_client_5xx_after_retries_is_unavailable(sandbox: Sandbox, group: GroupConfig, clock):
    sandbox.inject(Fault("status", status=502, times=10))
    with pytest.raises(UnavailableError) as caught:
        make_client(clock, SALESMANAGO_MAX_RETRIES=2).call_v2(
            group, "contact/upsert", CONTACT, action="contact.upsert"
        )
    assert caught.value.retryable
    assert len(sandbox.requests) == 3  # the first try and two retries


def test_client_timeout_is_not_retried_in_the_call(sandbox: Sandbox, group: GroupConfig, clock):
    # Given a reply slower than the 0.3 s read timeout (SALESmanago may still apply it, late)
    sandbox.inject(Fault("slow", delay_s=0.6, times=10))
    # When / Then the client does not send it again within the call, where the late first request
    # could land after a later command for the same contact: the source retries it later
    with pytest.raises(SalesmanagoTimeoutError):
        make_client(clock).call_v2(group, "contact/upsert", CONTACT, action="contact.upsert")
    assert len(sandbox.requests) == 1


def test_client_timeout_on_event_is_outcome_unknown_and_never_resent(
    sandbox: Sandbox, group: GroupConfig, clock
):
    # Given SALESmanago applies the event but replies too late
    sandbox.inject(Fault("slow", delay_s=0.6, apply=True))
    # When / Then the event is not sent a second time inside the call
    with pytest.raises(OutcomeUnknownError):
        make_client(clock).call_v2(group, "v2/contact/addContactExtEvent", EVENT, action="event.create")
    assert len(sandbox.requests_to("addContactExtEvent")) == 1


def test_client_connection_dropped_after_sending_is_not_retried_in_the_call(
    sandbox: Sandbox, group: GroupConfig, clock
):
    sandbox.inject(Fault("drop"))
    with pytest.raises(UnavailableError):
        make_client(clock).call_v2(group, "contact/upsert", CONTACT, action="contact.upsert")
    assert len(sandbox.requests) == 1


def test_client_connection_refused_is_retried_in_the_call(group: GroupConfig, clock):
    # Given nothing listens: the request never left, so retrying it is always safe
    with Sandbox(accounts=[]) as stopped:
        url = stopped.url
    closed = group.model_copy(update={"endpoint": url})
    with pytest.raises(UnavailableError):
        make_client(clock, SALESMANAGO_MAX_RETRIES=2).call_v2(
            closed, "contact/upsert", CONTACT, action="contact.upsert"
        )
    assert len(clock.slept) >= 1  # it backed off and tried again


def test_client_connection_reset_on_event_is_outcome_unknown(sandbox: Sandbox, group: GroupConfig, clock):
    sandbox.inject(Fault("drop", apply=True))
    with pytest.raises(OutcomeUnknownError):
        make_client(clock).call_v2(group, "v2/contact/addContactExtEvent", EVENT, action="event.create")
    assert len(sandbox.requests) == 1


def test_client_connection_refused_is_unavailable(group: GroupConfig, clock):
    # Given nothing listens on the endpoint (the sandbox fixture is not running here)
    with Sandbox(accounts=[]) as stopped:
        url = stopped.url
    closed = group.model_copy(update={"endpoint": url})
    # When / Then: never sent, so even an event is plainly unavailable, not unknown
    with pytest.raises(UnavailableError) as caught:
        make_client(clock, SALESMANAGO_MAX_RETRIES=1).call_v2(
            closed, "v2/contact/addContactExtEvent", EVENT, action="event.create"
        )
    assert type(caught.value) is UnavailableError


def test_client_non_json_body_is_transient(sandbox: Sandbox, group: GroupConfig, clock):
    sandbox.inject(Fault("non_json"))
    with pytest.raises(UnavailableError) as caught:
        make_client(clock).call_v2(group, "contact/upsert", CONTACT, action="contact.upsert")
    assert "not JSON" in str(caught.value)


def test_client_v3_upsert_success_sends_api_key_header(sandbox: Sandbox, group: GroupConfig, clock):
    body = {"catalogId": group.catalog_id, "products": [PRODUCT]}
    reply, warnings = make_client(clock).call_v3(
        group, "POST", "product/upsert", body, action="products.upsert"
    )
    assert reply["productIds"] == ["SKU-1"]
    assert warnings == []
    request = sandbox.requests[-1]
    assert request.path == "/v3/product/upsert"
    assert request.headers.get("API-KEY") == "***"  # present (the sandbox elides its value)
    assert request.body == body


def test_client_v3_400_problems_name_the_field(sandbox: Sandbox, group: GroupConfig, clock):
    body = {"catalogId": group.catalog_id, "products": [{**PRODUCT, "quantity": 1.5}]}
    with pytest.raises(SalesmanagoRejectedError) as caught:
        make_client(clock).call_v3(group, "POST", "product/upsert", body, action="products.upsert")
    assert caught.value.status == 400
    assert any("quantity" in d.field for d in caught.value.details)


def test_client_v3_unknown_catalog_is_rejected(sandbox: Sandbox, group: GroupConfig, clock):
    body = {"catalogId": "00000000-0000-4000-8000-00000000dead", "products": [PRODUCT]}
    with pytest.raises(SalesmanagoRejectedError) as caught:
        make_client(clock).call_v3(group, "POST", "product/upsert", body, action="products.upsert")
    assert "reason 16" in str(caught.value)


def test_client_v3_reason_12_is_success_with_warning(sandbox: Sandbox, group: GroupConfig, clock):
    sandbox.warn_trim = True
    body = {"catalogId": group.catalog_id, "products": [PRODUCT]}
    reply, warnings = make_client(clock).call_v3(
        group, "POST", "product/upsert", body, action="products.upsert"
    )
    assert reply["productIds"] == ["SKU-1"]
    assert warnings and "trimmed" in warnings[0].lower()


def test_client_v3_wrong_api_key_is_auth_error(sandbox: Sandbox, group: GroupConfig, clock):
    wrong = group.model_copy(update={"products_api_key": SecretStr("wrong-key")})
    with pytest.raises(AuthError):
        make_client(clock).call_v3(wrong, "GET", "product/catalogList", action="products.upsert")


def test_client_error_messages_mask_emails(sandbox: Sandbox, group: GroupConfig, clock):
    sandbox.inject(Fault("success_false", message="Contact leak.me@customer.example.com is blocked"))
    with pytest.raises(SalesmanagoRejectedError) as caught:
        make_client(clock).call_v2(group, "contact/upsert", CONTACT, action="contact.upsert")
    assert "leak.me@customer.example.com" not in str(caught.value)
    assert "contact:" in str(caught.value)


def test_client_repr_and_settings_hide_secrets(group: GroupConfig, clock):
    text = repr(group) + str(group) + repr(make_client(clock).__dict__)
    assert "demo-secret-do-not-use-1" not in text
    assert "demo-products-key-1" not in text


def test_client_timeouts_shrink_near_the_deadline(sandbox: Sandbox, group: GroupConfig, clock):
    # Given only 2 s left in the invocation and a reply that takes 1.5 s
    client = make_client(clock, SALESMANAGO_READ_TIMEOUT_S=10, SALESMANAGO_MAX_RETRIES=0)
    client.budget.set_remaining(2000)
    sandbox.inject(Fault("slow", delay_s=1.5))
    # When / Then the request gives up before the invocation would end, instead of waiting 10 s
    with pytest.raises(SalesmanagoTimeoutError):
        client.call_v2(group, "contact/upsert", CONTACT, action="contact.upsert")
    assert client.budget.timeout(3.05, 10) == (0.5, 0.5)


# ---- redirects are never followed (issue 16) -----------------------------------------------------
class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every request with ``status`` and a Location on another host; records what it got."""

    status = 302
    location = ""
    seen: list[dict[str, str]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        type(self).seen.append(dict(self.headers))
        self.send_response(type(self).status)
        if type(self).location:
            self.send_header("Location", type(self).location)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def _server(status: int, location: str = "") -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("Handler", (_Recorder,), {"status": status, "location": location, "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_client_redirect_is_a_permanent_error_naming_the_host_and_never_followed(status: int, clock):
    # Given an endpoint that redirects to another host
    with (
        _server(200) as (elsewhere, other),
        _server(status, f"{elsewhere}/v3/product/upsert") as (url, first),
    ):
        group = GroupConfig.model_validate(
            {
                "client_id": "c",
                "api_secret": "s3cr3t-value",
                "owner": "owner@shop.example.com",
                "endpoint": url,
                "products_endpoint": url,
                "products_api_key": "pRoDuCtS-key",
                "catalog_id": "cat",
            },
            context={"allow_loopback": True},
        )
        client = make_client(clock)
        # When / Then: a permanent error naming the host that redirected, for v3 and v2 alike
        with pytest.raises(GroupConfigError) as v3:
            client.call_v3(group, "POST", "product/upsert", {"products": []}, action="products.upsert")
        with pytest.raises(GroupConfigError) as v2:
            client.call_v2(group, "contact/upsert", CONTACT, action="contact.upsert")
        # And nothing, least of all the API-KEY header, reached the other host
        assert other.seen == []
        assert len(first.seen) == 2
    for error in (v3.value, v2.value):
        assert not error.retryable
        assert "127.0.0.1" in str(error) and "redirect" in str(error)
        assert "pRoDuCtS-key" not in str(error) and "s3cr3t" not in str(error)


# ---- a reply that starts, then stalls: the event was received ---------------------------------
class _StalledBody(http.server.BaseHTTPRequestHandler):
    """Answers 200 with its head at once and holds the body until ``release`` is set."""

    release = threading.Event()
    requests = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).requests += 1
        body = b'{"success": true, "eventId": "e-1"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        type(self).release.wait(timeout=5)
        with contextlib.suppress(OSError):  # the client gave up
            self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_client_event_reply_stalled_in_its_body_is_outcome_unknown(clock):
    # Given SALESmanago received the event and began its reply, whose body then stalls past the read
    # timeout (a loaded host between its head and its body)
    handler = type("Handler", (_StalledBody,), {"release": threading.Event(), "requests": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    group = GroupConfig.model_validate(
        {
            "client_id": "c",
            "api_secret": "s3cr3t-value",
            "owner": "owner@shop.example.com",
            "endpoint": f"http://127.0.0.1:{server.server_address[1]}",
        },
        context={"allow_loopback": True},
    )
    try:
        # When the event is sent
        with pytest.raises(OutcomeUnknownError):
            make_client(clock).call_v2(group, "v2/contact/addContactExtEvent", EVENT, action="event.create")
    finally:
        handler.release.set()
        server.shutdown()
        server.server_close()
    # Then its outcome is unknown (a plain timeout would release its claim, and the retry would send
    # it again without looking for it), and it was sent once
    assert handler.requests == 1
