"""Masking of personal data: no e-mail leaves the bridge in clear through a log, error or reason."""

from __future__ import annotations

import hashlib
import re

EMAIL_PATTERN = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+"
)


def pseudonymize(email: str) -> str:
    """A stable, non-reversible-at-a-glance token for an e-mail, to correlate log lines."""
    return "contact:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:12]


def scrub(text: str) -> str:
    """Replace every e-mail address in ``text`` with its pseudonym."""
    return EMAIL_PATTERN.sub(lambda match: pseudonymize(match.group()), text)
