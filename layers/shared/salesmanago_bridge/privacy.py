"""Masking of personal data: no e-mail leaves the bridge in clear through a log, error or reason.

A pseudonym is a keyed HMAC-SHA256 of the normalized e-mail. The key is per deployment (a Secrets
Manager secret the template generates, docs/deploy.md "Pseudonyms"), read on the first pseudonym
and cached like the group configs; without it, hashing a list of candidate e-mails matches nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable

# Bounded everywhere (RFC 5321: a local part of at most 64 characters, labels of at most 63), so
# the work per position is bounded and a scan is linear in the text. The dotted part may be empty:
# an address cut at a limit ("jan@exam…") is masked too.
EMAIL_PATTERN = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9-]{1,63}){0,8}"
)
# What a message, a reason, a field path or a traceback may carry: far more than any of ours, far
# less than a hostile payload.
MAX_SCRUB_CHARS = 16_384
TRUNCATED = "…[truncated]"

PSEUDONYM_PREFIX = "contact:"
# 64 bits: collisions stay unlikely among millions of contacts; 16 digits also tell these apart
# from the 12 of the unkeyed SHA-256 pseudonyms logged before (which match none of these).
PSEUDONYM_HEX_DIGITS = 16
# What an e-mail becomes while the key cannot be read: nothing revealed, nothing to correlate.
UNKEYED_PSEUDONYM = PSEUDONYM_PREFIX + "unkeyed"
# After a failed read, log lines do not wait on the key again for this long.
KEY_RETRY_AFTER_S = 30.0

KeyLoader = Callable[[], str | bytes]

# A stdlib logger on purpose: the bridge's logger scrubs through this module.
_log = logging.getLogger(__name__)
# Locally (no secret configured) one random key per process: pseudonyms correlate within a run.
_PROCESS_KEY = secrets.token_bytes(32)


def _deployment_key() -> str | bytes:
    """The deployment's key (Powertools' cached get_secret), else this process's random key."""
    from salesmanago_bridge.settings import get_settings  # settings → errors → privacy

    settings = get_settings()
    if settings.pseudonym_key_secret_id is None:
        return _PROCESS_KEY
    from aws_lambda_powertools.utilities.parameters import get_secret

    return get_secret(settings.pseudonym_key_secret_id, max_age=settings.parameters_max_age_s)


class _KeyState:
    """The key loader in use and when it last failed (shared by the invocation's threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loader: KeyLoader = _deployment_key
        self.failed_at: float | None = None


_state = _KeyState()


def use_key_loader(loader: KeyLoader | None) -> KeyLoader:
    """Take the pseudonym key from ``loader`` (``None``: the deployment's); returns the previous one.

    The CLI uses this to read the stage's secret with the operator's credentials, so its
    dead-letter views show the pseudonyms of the logs.
    """
    with _state.lock:
        previous, _state.loader = _state.loader, loader or _deployment_key
        _state.failed_at = None
    return previous


def _key() -> bytes | None:
    failed_at = _state.failed_at
    if failed_at is not None and time.monotonic() - failed_at < KEY_RETRY_AFTER_S:
        return None
    try:
        key = _state.loader()
    except Exception as exc:  # a log line must neither fail nor leak for want of the key
        _state.failed_at = time.monotonic()
        _log.warning(
            "pseudonym key unavailable (%s): e-mails are written as %s for %ss",
            type(exc).__name__,
            UNKEYED_PSEUDONYM,
            KEY_RETRY_AFTER_S,
        )
        return None
    _state.failed_at = None
    return key.encode() if isinstance(key, str) else key


def pseudonymize(email: str) -> str:
    """A stable token for an e-mail, to correlate log lines; irreversible without the key."""
    key = _key()
    if key is None:
        return UNKEYED_PSEUDONYM
    digest = hmac.new(key, email.strip().lower().encode(), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:PSEUDONYM_HEX_DIGITS]


def scrub(text: str) -> str:
    """Replace every e-mail address in ``text`` with its pseudonym; text past MAX_SCRUB_CHARS is cut."""
    if len(text) > MAX_SCRUB_CHARS:
        text = text[:MAX_SCRUB_CHARS] + TRUNCATED
    return EMAIL_PATTERN.sub(lambda match: pseudonymize(match.group()), text)
