"""scripts/bench must keep working: a smoke run with tiny counts (its figures are not checked, only that
every setup ran and every request was answered 200 by the key-checking upstream)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_benchmark_runs_every_setup_and_every_request_is_answered():
    out = subprocess.run([str(REPO / "scripts" / "bench"), "--quick", "--no-reference"], capture_output=True, text=True,
                         timeout=600, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    table = out.stdout
    for column in ("direct", "bare mitmdump", "authsome (injecting)", "authsome (tunnelled host)"):
        assert column in table
    unanswered = next(line for line in table.splitlines() if line.startswith("| requests not answered 200"))
    assert unanswered.split("|")[2:-1] == [" 0 "] * 4, unanswered
    assert "`authsome run -- /bin/true`" in table
