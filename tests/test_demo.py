"""The README's main job (`bash scripts/demo` = setup + scripts/demo.py) keeps working."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_demo_runs_an_agent_without_secrets(home):
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "demo.py")], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "agent: X_ACCESS_TOKEN=authsome-proxy-managed" in r.stdout
    assert "GET https://api.twitter.com/2/users/me -> 200" in r.stdout
    assert '"success": 1' in r.stdout  # the dead token was refreshed once
    assert "demo finished" in r.stdout
