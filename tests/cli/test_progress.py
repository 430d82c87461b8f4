"""The progress bar: rate and ETA, one line a tenth when stderr is not a terminal."""

from __future__ import annotations

import io

from bridge_cli.progress import Progress
from tests.conftest import FakeClock


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_prints_a_line_each_tenth_with_rate_and_eta():
    # Given: 1,000 items, 100 a second
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(1_000, "sending", stream=stream, clock=clock.monotonic)

    # When
    for _ in range(100):
        clock.advance(0.1)
        progress.advance(10)
    progress.close()

    # Then
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[4].startswith("sending ") and " 50%  500/1,000  100/s  ETA 0:05" in lines[4]
    assert lines[-1].endswith("100%  1,000/1,000  100/s  in 0:10")


def test_progress_redraws_in_place_on_a_terminal():
    clock, stream = FakeClock(), Terminal()
    with Progress(100, "re-sending", stream=stream, clock=clock.monotonic) as progress:
        for _ in range(10):
            clock.advance(1)
            progress.advance(10)

    output = stream.getvalue()
    assert output.count("\r") >= 10 and output.endswith("\n")
    assert "in 0:10" in output


def test_progress_is_silent_when_disabled():
    stream = io.StringIO()
    with Progress(10, "x", stream=stream, enabled=False) as progress:
        progress.advance(10)

    assert stream.getvalue() == ""
