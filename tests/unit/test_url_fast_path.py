"""The fast path for product URLs accepts only what the urlsplit rule accepts."""

from __future__ import annotations

from urllib.parse import urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from salesmanago_bridge.commands import _PLAIN_URL, _check_url


def reference(value: str) -> bool:
    """The rule itself: an http(s) scheme, a host part, no whitespace."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not any(c.isspace() for c in value)


def ours(value: str) -> bool:
    try:
        _check_url(value)
    except ValueError:
        return False
    return True


@settings(max_examples=1000, deadline=None)
# Only ASCII takes the fast path (_check_url); a non-ASCII match goes to urlsplit, tested below.
@given(st.from_regex(_PLAIN_URL, fullmatch=True, alphabet=st.characters(codec="ascii")))
def test_url_fast_path_takes_only_urls_the_rule_accepts(value: str):
    assert reference(value)
    assert ours(value)


@settings(max_examples=1000, deadline=None)
@given(
    st.sampled_from(["http://", "https://", "HTTPS://", "ftp://", "http:/", "", "https://["]).flatmap(
        lambda head: st.text(max_size=30).map(lambda tail: head + tail)
    )
)
def test_url_check_agrees_with_the_rule_on_any_text(value: str):
    assert ours(value) == reference(value)


def test_url_whose_host_normalizes_to_a_delimiter_is_refused():
    # Found by Hypothesis: U+2100 (ACCOUNT OF) is "a/c" under NFKC, so urlsplit refuses the host.
    assert not reference("http://\u2100")
    assert not ours("http://\u2100")
