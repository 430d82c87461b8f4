"""HTTP client for SALESmanago API v2 (contacts, events) and v3 (product catalog): the transport.

Which paths exist and how their bodies and replies look is ``gateway.py``'s business; this
package signs, sends, retries and turns failures into ``BridgeError``s:

    __init__.py   SalesmanagoClient: call_v2 (signed body), call_v3 (API-KEY header), send
    session.py    the process's requests.Session (pools, retries on every method) and the v2 sha
    retry.py      the invocation's TimeBudget and BridgeRetry (urllib3 Retry: budget, at most once)
    failures.py   transport failures, statuses and replies → TransientError | PermanentError

One ``requests.Session`` per process, reused across invocations. urllib3's ``Retry`` retries
connection errors, 429 and 5xx in the call, with backoff, jitter and ``Retry-After``; the
subclass adds what it cannot know: the invocation's time budget, and that an event must never
be sent twice because a reply was lost.
"""

from __future__ import annotations

import secrets
from typing import Any

import requests

from salesmanago_bridge.client.failures import (
    AUTH_MESSAGES,
    reply_json,
    status_failure,
    transport_failure,
    v2_rejection,
    v3_warnings,
)
from salesmanago_bridge.client.retry import (
    OUTCOME_UNKNOWN_STATUSES,
    RETRY_STATUSES,
    URLLIB3_PRIVATE,
    BridgeRetry,
    Clock,
    SystemClock,
    TimeBudget,
    is_at_most_once,
    sent_without_reply,
)
from salesmanago_bridge.client.session import build_session, sign
from salesmanago_bridge.codec import dumps
from salesmanago_bridge.errors import AuthError
from salesmanago_bridge.groups import GroupConfig
from salesmanago_bridge.observability import SALESMANAGO_REQUESTS, metrics
from salesmanago_bridge.settings import Settings

__all__ = [
    "AUTH_MESSAGES",
    "OUTCOME_UNKNOWN_STATUSES",
    "RETRY_STATUSES",
    "URLLIB3_PRIVATE",
    "BridgeRetry",
    "Clock",
    "SalesmanagoClient",
    "SystemClock",
    "TimeBudget",
    "build_session",
    "sent_without_reply",
    "sign",
]

JSON_BODY = {"Content-Type": "application/json"}


class SalesmanagoClient:
    """Calls SALESmanago for one process; ``budget`` is reset per invocation by the dispatcher."""

    def __init__(
        self, settings: Settings, *, clock: Clock | None = None, session: requests.Session | None = None
    ) -> None:
        self._settings = settings
        self.clock = clock or SystemClock()
        self.budget = TimeBudget(
            clock=self.clock,
            max_retry_after_s=settings.max_retry_after_s,
            request_time_s=settings.connect_timeout_s + settings.read_timeout_s,
        )
        self._session = session or build_session(settings, self.budget)
        self._timeout = (settings.connect_timeout_s, settings.read_timeout_s)

    @property
    def session(self) -> requests.Session:
        return self._session

    def close_connections(self) -> None:
        """Empty the session's connection pools; the next request opens a fresh connection."""
        self._session.close()

    # ---- API v2 -------------------------------------------------------------------------
    def call_v2(self, group: GroupConfig, path: str, body: dict[str, Any], *, action: str) -> dict[str, Any]:
        """POST ``{endpoint}/api/{path}`` with the body auth; return the reply of a ``success: true``.

        Raises:
            TransientError: throttled, unavailable, timed out, or outcome unknown (events).
            PermanentError: ``success: false``, authentication refused.
        """
        api_key = secrets.token_hex(16)  # any string works; a fresh one per request
        payload = {
            "clientId": group.client_id,
            "apiKey": api_key,
            "requestTime": int(self.clock.time() * 1000),
            "sha": sign(api_key, group.client_id, group.api_secret.get_secret_value()),
            "owner": str(group.owner),
            **body,
        }
        url = f"{group.endpoint}/api/{path}"
        response = self._send("POST", url, action=action, data=dumps(payload), headers=JSON_BODY)
        reply = reply_json(response, url)
        if response.status_code >= 400 or reply.get("success") is not True:
            messages = reply.get("message") or [f"HTTP {response.status_code}"]
            raise v2_rejection(messages, response.status_code, action)
        return reply

    # ---- API v3 -------------------------------------------------------------------------
    def call_v3(
        self, group: GroupConfig, method: str, path: str, body: dict[str, Any] | None = None, *, action: str
    ) -> tuple[dict[str, Any], list[str]]:
        """Call ``{products_endpoint}/v3/{path}`` with the ``API-KEY`` header; return (reply, warnings).

        Raises:
            AuthError: reason 10 or 401/403. SalesmanagoRejectedError: 400 with ``problems``.
        """
        if group.products_api_key is None:
            raise AuthError("the group has no products_api_key for the product catalog API")
        url = f"{group.products_endpoint}/v3/{path}"
        headers = {"API-KEY": group.products_api_key.get_secret_value()}
        if body is not None:
            headers.update(JSON_BODY)
        response = self._send(
            method, url, action=action, data=None if body is None else dumps(body), headers=headers
        )
        reply = reply_json(response, url)
        return reply, v3_warnings(response, reply, action)

    # ---- transport ----------------------------------------------------------------------
    def _send(self, method: str, url: str, *, action: str, **kwargs: Any) -> requests.Response:
        started = self.clock.monotonic()
        at_most_once = is_at_most_once(url)
        try:
            timeout = self.budget.timeout(*self._timeout)
            # Never follow a redirect: it would carry the API-KEY header (or the signed body) to
            # whatever host the reply names.
            response = self._session.request(method, url, timeout=timeout, allow_redirects=False, **kwargs)
        except requests.exceptions.RequestException as exc:
            raise transport_failure(exc, at_most_once) from exc
        finally:
            elapsed_ms = (self.clock.monotonic() - started) * 1000
            metrics.count(SALESMANAGO_REQUESTS, action=action)
            metrics.latency(elapsed_ms, action=action)
        failure = status_failure(response, url, at_most_once)
        if failure is not None:
            raise failure
        return response
