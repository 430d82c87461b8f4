"""The process's ``requests.Session`` and the v2 body signature."""

from __future__ import annotations

import hashlib
import urllib.request

import requests
from requests.adapters import HTTPAdapter

from salesmanago_bridge.client.retry import (
    BACKOFF_FACTOR_S,
    BACKOFF_JITTER_S,
    BACKOFF_MAX_S,
    RETRY_STATUSES,
    BridgeRetry,
    TimeBudget,
)
from salesmanago_bridge.settings import Settings


def build_session(settings: Settings, budget: TimeBudget) -> requests.Session:
    """A session whose adapter retries POST too (every v2 call is a POST; urllib3 skips it by default)."""
    retry = BridgeRetry(
        total=settings.max_retries,
        connect=settings.max_retries,
        # No retry once a request was sent and no reply came: SALESmanago may still apply it late,
        # after a later command for the same contact (a stale write). The source retries instead.
        read=0,
        status=settings.max_retries,
        other=0,
        allowed_methods=None,  # None = every method, POST included
        status_forcelist=RETRY_STATUSES,
        backoff_factor=BACKOFF_FACTOR_S,
        backoff_max=BACKOFF_MAX_S,
        backoff_jitter=BACKOFF_JITTER_S,
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=True,
    )
    retry.budget = budget
    session = requests.Session()
    # requests scans the environment for proxies twice per request; read it once instead.
    session.trust_env = False
    session.proxies = urllib.request.getproxies()
    adapter = HTTPAdapter(
        max_retries=retry, pool_connections=8, pool_maxsize=max(10, settings.max_parallel_requests * 2)
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"Accept": "application/json", "User-Agent": "salesmanago-bridge/0.1"})
    return session


def sign(api_key: str, client_id: str, api_secret: str) -> str:
    """v2 ``sha``: lowercase hex SHA-1 of apiKey + clientId + apiSecret, no separator."""
    return hashlib.sha1((api_key + client_id + api_secret).encode(), usedforsecurity=False).hexdigest()
