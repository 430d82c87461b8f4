"""How the transport's failures are read: an event sent without a whole reply is outcome unknown
(reconciled before any resend), never a plain timeout or an unavailable host (released, resent)."""

from __future__ import annotations

import pytest
import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ProtocolError, ReadTimeoutError

from salesmanago_bridge.client.failures import reply_json, transport_failure
from salesmanago_bridge.errors import OutcomeUnknownError, SalesmanagoTimeoutError, UnavailableError

URL = "https://app2.salesmanago.com/api/v2/contact/addContactExtEvent"


def read_timeout() -> ReadTimeoutError:
    return ReadTimeoutError(None, URL, "Read timed out.")  # type: ignore[arg-type]


# The shapes requests gives a failure after the request went out, as each arises.
SENT = {
    # no reply head in time
    "head timeout": requests.exceptions.ReadTimeout(read_timeout()),
    # the head came, the body stalled past the read timeout (Response.content wraps it)
    "body timeout": requests.exceptions.ConnectionError(read_timeout()),
    # the head came, the body broke off (an IncompleteRead)
    "body broke off": requests.exceptions.ChunkedEncodingError(ProtocolError("Connection broken")),
    # no reply at all: the connection closed after the request was written
    "connection reset": requests.exceptions.ConnectionError(ProtocolError("Connection aborted.")),
}


@pytest.mark.parametrize("shape", sorted(SENT))
def test_an_event_sent_without_a_whole_reply_is_outcome_unknown(shape: str) -> None:
    # Given an event call that failed after SALESmanago received it / When the failure is read
    error = transport_failure(SENT[shape], at_most_once=True)
    # Then its outcome is unknown: the next attempt looks the event up before sending it again
    assert isinstance(error, OutcomeUnknownError), type(error).__name__


def test_a_contact_call_whose_body_stalled_is_a_timeout() -> None:
    # Given an idempotent call (a contact upsert) whose reply body stalled
    error = transport_failure(SENT["body timeout"], at_most_once=False)
    # Then it is a plain timeout: repeating it is harmless
    assert type(error) is SalesmanagoTimeoutError


@pytest.mark.parametrize(
    "exc",
    [
        requests.exceptions.ConnectTimeout(ConnectTimeoutError("connect timed out")),
        requests.exceptions.ConnectionError(NewConnectionError(None, "refused")),  # type: ignore[arg-type]
    ],
)
def test_an_event_never_sent_is_unavailable_not_unknown(exc: Exception) -> None:
    # Given an event whose connection was never made / Then it is surely not created: released and resent
    assert type(transport_failure(exc, at_most_once=True)) is UnavailableError


@pytest.mark.parametrize("body", [b"[]", b'"ok"', b"<html>busy</html>"])
def test_an_event_answered_with_an_unreadable_reply_is_outcome_unknown(body: bytes) -> None:
    # Given SALESmanago answered an event call 200 with a body that is no JSON object
    response = requests.Response()
    response.status_code, response._content, response.encoding = 200, body, "utf-8"
    # When / Then it had the request, whatever it did: the event's outcome is unknown
    with pytest.raises(OutcomeUnknownError):
        reply_json(response, URL)
    # And a contact call answered so is merely unavailable (repeating it is harmless)
    with pytest.raises(UnavailableError) as caught:
        reply_json(response, URL.replace("addContactExtEvent", "upsert"))
    assert type(caught.value) is UnavailableError
