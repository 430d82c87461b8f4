"""Masking of personal data: no e-mail leaves the bridge in clear through a log, error or reason."""

from __future__ import annotations

import hashlib
import re

# Bounded everywhere (RFC 5321: a local part of at most 64 characters, labels of at most 63), so
# the work per position is bounded and a scan is linear in the text. The dotted part may be empty:
# an address cut at a limit ("jan@exam…") is masked too.
EMAIL_PATTERN = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9-]{1,63}){0,8}"
)
# What a message, a reason or a field path may carry: far more than any of ours, far less than a
# hostile payload.
MAX_SCRUB_CHARS = 4096
TRUNCATED = "…[truncated]"


def pseudonymize(email: str) -> str:
    """A stable, non-reversible-at-a-glance token for an e-mail, to correlate log lines."""
    return "contact:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:12]


def scrub(text: str) -> str:
    """Replace every e-mail address in ``text`` with its pseudonym; text past MAX_SCRUB_CHARS is cut."""
    if len(text) > MAX_SCRUB_CHARS:
        text = text[:MAX_SCRUB_CHARS] + TRUNCATED
    return EMAIL_PATTERN.sub(lambda match: pseudonymize(match.group()), text)
