"""`make keys-demo`: a key's life on moto, and the API accepting and refusing each key accordingly."""

from __future__ import annotations

import io
import re

from local import keys_demo


def _section(transcript: str, title: str) -> str:
    return transcript.split(f"--- after {title}\n", 1)[1].split("\n\n", 1)[0]


def test_keys_demo_api_answers_follow_each_step():
    # Given / When
    out = io.StringIO()
    keys_demo.run(out)
    transcript = out.getvalue()

    # Then: every command succeeded
    assert re.findall(r"\(exit (\d)\)", transcript) == ["0"] * transcript.count("$ bridge")
    created = _section(transcript, "create")
    assert "key A" in created and "POST /contacts with key A: 200 from the handler (applied)" in created
    rotated = _section(transcript, "rotate --overlap 24h: both keys work")
    assert rotated.count("200 from the handler (applied)") == 2
    expired = _section(transcript, "the overlap ended and expire ran")
    assert "key A: 403 from API Gateway" in expired and "key B: 200 from the handler" in expired
    assert 'index {"group_keys":["demo-shop"]}' in expired and "index (no entry)" in expired
    revoked = _section(transcript, "revoke")
    assert revoked.count("403 from API Gateway") == 2 and "api_key_ids []" in revoked
    mistaken = _section(transcript, "a revoked key re-enabled outside the CLI")
    assert "key B: 403 from the handler (forbidden)" in mistaken
