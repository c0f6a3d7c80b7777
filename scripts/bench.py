"""Speed and memory of the commands people wait on, as ratios measured within one run.

    .venv/bin/python scripts/bench.py [--runs N]

Measures (median of N runs, each against a yardstick taken in the same run, because this
machine is shared and noisy):
  - `authsome --help` and `authsome get x --field status` against `python -c pass`;
  - `authsome run -- true` (proxy start, child, proxy stop) against `true`;
  - the proxy's peak memory while a 256 MiB download streams through it;
  - requests on a kept-alive connection through the proxy against the same client direct.
Nothing here is asserted; the test suite never times anything.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.api import ApiServer  # noqa: E402
from tests.support.tls import make_ca  # noqa: E402

AUTHSOME = [sys.executable, "-m", "authsome"]


def wall(argv: list[str], env: dict, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_rss_mib(argv: list[str], env: dict) -> float:
    """Peak RSS of the largest process in the command's tree (the authsome process, not curl)."""
    out = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, check=True)
    return int(out.stderr.strip().splitlines()[-1]) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="authsome-bench-"))
    ca = make_ca(work / "pki")
    api = ApiServer(ca, work)
    env = {**os.environ, "AUTHSOME_HOME": str(work / "home"), "SSL_CERT_FILE": str(ca.cert),
           "CURL_CA_BUNDLE": str(ca.cert), "REQUESTS_CA_BUNDLE": str(ca.cert), "AUTHSOME_KEYRING": "0"}
    env.pop("AUTHSOME_MASTER_KEY", None)
    seed = ("import time\nfrom authsome.models import Connection\nfrom authsome.vault import Vault\n"
            "Vault.open().put_connection(Connection(provider='x', access_token='bench-token', expires_at=time.time()+3600))")
    subprocess.run([sys.executable, "-c", seed], env=env, check=True)
    resolve = ["--resolve", f"api.twitter.com:443:127.0.0.1:{api.port}"]
    rows = []

    python = wall([sys.executable, "-c", "pass"], env, args.runs)
    for label, argv in [("authsome --help", [*AUTHSOME, "--help"]),
                        ("authsome get x --field status", [*AUTHSOME, "get", "x", "--field", "status"])]:
        t = wall(argv, env, args.runs)
        rows.append((label, f"{t * 1000:.0f} ms", f"{t / python:.1f}x python -c pass ({python * 1000:.0f} ms)"))

    true = wall(["true"], env, args.runs)
    t = wall([*AUTHSOME, "run", "--", "true"], env, args.runs)
    rows.append(("authsome run -- true", f"{t * 1000:.0f} ms", f"proxy start + stop; `true` alone {true * 1000:.1f} ms"))

    # Per-request cost on a kept-alive connection: the same client timed directly and through the proxy.
    timer = ("import sys, time, requests\ns = requests.Session(); s.get(sys.argv[1]); t = time.perf_counter()\n"
             "for _ in range(200): s.get(sys.argv[1])\nprint((time.perf_counter() - t) / 200)")
    direct = float(subprocess.run([sys.executable, "-c", timer, f"https://127.0.0.1:{api.port}/2/users/me"],
                                  env=env, capture_output=True, text=True, check=True).stdout)
    proxied = float(subprocess.run([*AUTHSOME, "run", *resolve, "--", sys.executable, "-c", timer,
                                    "https://api.twitter.com/2/users/me"], env=env, capture_output=True, text=True,
                                   check=True).stdout)
    rows.append(("request on a kept-alive connection", f"{proxied * 1000:.2f} ms through authsome",
                 f"direct {direct * 1000:.2f} ms (requests.Session, 200 requests)"))

    rss = peak_rss_mib([*AUTHSOME, "run", *resolve, "--", "sh", "-c",
                              "curl -s -o /dev/null https://api.twitter.com/big?mb=256 & "
                              "sleep 1; curl -s https://api.twitter.com/release >/dev/null; wait"], env)
    idle = peak_rss_mib([*AUTHSOME, "run", "--", "true"], env)
    rows.append(("peak RSS, 256 MiB download", f"{rss:.0f} MiB", f"idle run {idle:.0f} MiB: streamed, not buffered"))

    width = max(len(r[0]) for r in rows)
    print(f"runs per figure: {args.runs} (medians)")
    for label, value, note in rows:
        print(f"{label.ljust(width)}  {value:>22}  {note}")
    api.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
