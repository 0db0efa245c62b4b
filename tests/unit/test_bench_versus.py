"""bench.versus: a replay on this tree and on a git ref, by turns, in fresh interpreters with each tree's code."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench import versus

REPO = Path(__file__).resolve().parents[2]


def _has_git_history() -> bool:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, check=False)
    return done.returncode == 0


def _code_is_committed() -> bool:
    """Whether this tree's code (tests aside) is HEAD's: then both replays must store the same history."""
    done = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", ".", ":!tests"], cwd=REPO, check=False)
    return done.returncode == 0


@pytest.mark.skipif(not _has_git_history(), reason="needs the repository's git history (a clone)")
def test_this_tree_against_head_replays_the_same_events_and_history(capsys: pytest.CaptureFixture[str]) -> None:
    result = versus.main(["--base", "HEAD", "--days", "1", "--runs", "1", "--every", "240", "--processes", "2"])
    assert result is not None
    runs = [out for outs in result["runs"].values() for out in outs]
    assert len(runs) == 2 and runs[0]["events"] == runs[1]["events"] > 1000 and runs[0]["snapshots"] > 1000
    digests = [out["digest"] for out in runs]
    assert all(len(d) == 16 for d in digests) and result["same_history"] == (digests[0] == digests[1])
    if _code_is_committed():  # as in CI: two replays of the same code store the same history
        assert result["same_history"]
    assert result["ratio"] > 0 and "ratio (this tree / base)" in capsys.readouterr().out
