"""The wheel installs and runs with no checkout present, and keeps to its namespace."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is needed to build the wheel (run the suite with `uv run pytest`)"
    return uv


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtual environment with only the built wheel installed."""
    work = tmp_path_factory.mktemp("wheel")
    uv = _uv()
    subprocess.run([uv, "build", "--wheel", "--out-dir", str(work / "dist"), str(REPO)],
                   check=True, capture_output=True, timeout=300)
    [wheel] = (work / "dist").glob("authsome-*.whl")
    venv = work / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, timeout=120)
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(wheel)],
                   check=True, timeout=600)
    return venv


def _run(venv: Path, *args: str, home: Path) -> subprocess.CompletedProcess:
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "AUTHSOME_HOME": str(home), "HOME": str(home.parent)}
    # cwd outside the checkout: nothing can be imported from the source tree.
    return subprocess.run(list(args), capture_output=True, text=True, env=env, cwd=home.parent, timeout=120)


def test_wheel_runs_help_and_reads_bundled_definitions_without_a_checkout(installed, tmp_path):
    home = tmp_path / "h"
    r = _run(installed, "authsome", "--help", home=home)
    assert r.returncode == 0, r.stderr
    assert "usage: authsome" in r.stdout
    r = _run(installed, "authsome", "inspect", "x", home=home)
    assert r.returncode == 0, r.stderr
    assert '"api.twitter.com"' in r.stdout
    assert _run(installed, "authsome", "get", "x", "--field", "status", home=home).stdout == "not_connected\n"


def test_wheel_installs_nothing_generic_at_the_top_level(installed, tmp_path):
    code = (
        "import importlib.util as u, authsome, authsome.addons, authsome.certs, authsome.catalog\n"
        "print([n for n in ('addons', 'certs', 'providers', 'tests', 'scripts') if u.find_spec(n)])\n"
        "print(authsome.__file__)"
    )
    r = _run(installed, str(installed / "bin" / "python"), "-c", code, home=tmp_path / "h")
    assert r.returncode == 0, r.stderr
    generic, location = r.stdout.splitlines()
    assert generic == "[]"
    assert str(REPO) not in location and "site-packages" in location
