"""Side-by-side benchmark: direct, bare mitmdump, authsome (injecting, tunnelled), the reference authsome 0.2.3.

    scripts/bench [--requests N] [--runs N] [--no-reference] [--quick]

One run measures everything against a local nginx (HTTPS, a throwaway CA)
that answers 200 only to requests carrying the right API key and 401 to
the rest (counted). Load comes from a small Go client (`scripts/loadgen`):
16 keep-alive connections, sequential requests on one, a new connection
per request. Every proxied figure is also a ratio to bare mitmdump (or the
reference) of the same run; medians of --runs repetitions. Nothing here is
asserted: the test suite never times anything (it runs this with --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.tls import make_ca, make_leaf  # noqa: E402

AUTHSOME = [sys.executable, "-m", "authsome"]
KEY = "sk-bench" + "k" * 40
ROUTED = "api.openai.com"  # routed by the openai provider, in authsome and in the reference
TUNNELLED = "other.bench.test"  # routed by no provider
REFERENCE = "authsome==0.2.3"
CACHE = REPO / ".bench"


# -- the parts ---------------------------------------------------------------------------

def loadgen() -> Path:
    out = CACHE / "loadgen"
    source = REPO / "scripts" / "loadgen" / "main.go"
    if not out.exists() or out.stat().st_mtime < source.stat().st_mtime:
        CACHE.mkdir(exist_ok=True)
        subprocess.run(["go", "build", "-o", str(out), "."], cwd=source.parent, check=True,
                       env={**os.environ, "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"})
    return out


def nginx(work: Path, leaf) -> tuple[subprocess.Popen, int]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise SystemExit("bench: needs nginx (Debian: apt-get install nginx-light; scripts/setup installs it)")
    port = _free_port()
    conf = work / "nginx.conf"
    conf.write_text(textwrap.dedent(f"""\
        worker_processes 1;
        daemon off;
        pid {work}/nginx.pid;
        error_log {work}/nginx-error.log warn;
        events {{ worker_connections 4096; }}
        http {{
            access_log off;
            keepalive_requests 1000000;
            keepalive_timeout 120s;
            client_body_temp_path {work}/nginx-tmp;
            server {{
                listen 127.0.0.1:{port} ssl;
                ssl_certificate {leaf.cert};
                ssl_certificate_key {leaf.key};
                location / {{
                    if ($http_authorization != "Bearer {KEY}") {{ return 401 "no key\\n"; }}
                    default_type application/json;
                    return 200 '{{"ok": true}}\\n';
                }}
            }}
        }}
        """))
    proc = subprocess.Popen([binary, "-p", str(work), "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        _wait_port(port)
    except BaseException:
        proc.send_signal(signal.SIGINT)  # nginx: fast shutdown, workers included
        proc.wait(10)
        raise
    return proc, port


def reference_venv() -> Path | None:
    """The reference, from PyPI, in a virtual environment of its own (made once, kept in .bench/)."""
    venv = CACHE / "reference-0.2.3"
    python = venv / "bin" / "python"
    if not (venv / "bin" / "authsome").exists():
        import mitmproxy.version

        base = os.path.realpath(getattr(sys, "_base_executable", sys.executable))  # where scripts/setup put uv
        uv = [base, "-m", "uv"]
        subprocess.run([*uv, "venv", "--quiet", "--python", base, str(venv)], check=True,
                       env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"})
        subprocess.run([*uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", str(python), REFERENCE,
                        f"mitmproxy=={mitmproxy.version.VERSION}"], check=True)
    return venv


SITE = '''\
# For the bench only: send {routed}/{tunnelled}:443 to nginx, and trust the bench CA upstream.
import os, socket
_to = ("127.0.0.1", int(os.environ["BENCH_NGINX_PORT"]))
_orig = socket.getaddrinfo
def getaddrinfo(host, port, *a, **k):
    name = host.decode() if isinstance(host, bytes) else host
    if name in ({routed!r}, {tunnelled!r}) and str(port) == "443":
        return _orig(_to[0], _to[1], *a, **k)
    return _orig(host, port, *a, **k)
socket.getaddrinfo = getaddrinfo
try:
    import certifi
    certifi.where = lambda: os.environ["BENCH_UPSTREAM_CA"]
except ImportError:
    pass
'''


# -- measuring ---------------------------------------------------------------------------

def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 20) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def drive(args) -> int:
    """The child side: run every load phase against one proxy (or none) and print the figures as JSON."""
    gen = os.environ["BENCH_LOADGEN"]
    pid = int(os.environ.get("BENCH_PROXY_PID") or os.getppid())
    direct = args.drive == "direct"
    url = f"https://{args.host}/bench"
    common = [gen, "-url", url, "-header", f"Authorization: Bearer {args.key}"]
    if direct:
        common += ["-proxy", "", "-resolve", f"{args.host}:443=127.0.0.1:{os.environ['BENCH_NGINX_PORT']}"]
    if os.environ.get("BENCH_CLIENT_CA"):
        common += ["-cacert", os.environ["BENCH_CLIENT_CA"]]

    def load(*extra: str) -> dict:
        out = subprocess.run([*common, *extra], capture_output=True, text=True, check=True)
        return json.loads(out.stdout)

    n = args.requests
    load("-c", "4", "-n", "40")  # warm: connections, certificates, caches
    figures: dict = {"concurrent": [], "cpu_ms": []}
    for _ in range(args.runs):
        before = None if direct else cpu_seconds(pid)
        result = load("-c", "16", "-n", str(n))
        if before is not None:
            figures["cpu_ms"].append((cpu_seconds(pid) - before) * 1000 / n)
        figures["concurrent"].append(result)
    figures["sequential"] = load("-c", "1", "-n", str(max(50, n // 4)))
    figures["newconn"] = load("-c", "1", "-n", str(max(20, n // 20)), "-newconn")
    figures["nosni"] = load("-c", "4", "-n", str(max(20, n // 20)), "-nosni")
    if not direct and args.memory:
        total = load("-c", "16", "-n", "1000")
        figures["rss_1k"] = rss_mib(pid)
        load("-c", "16", "-n", "9000")
        figures["rss_10k"] = rss_mib(pid)
        figures["rss_peak"] = rss_mib(pid, "VmHWM")
        figures["memory_401"] = total["statuses"].get("401", 0)
    print(json.dumps(figures))
    return 0


def wall(argv: list[str], env: dict, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# -- the run -----------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="requests per concurrent load (default 2000)")
    parser.add_argument("--runs", type=int, default=3, help="repetitions; figures are medians (default 3)")
    parser.add_argument("--no-reference", action="store_true", help="leave out the reference authsome 0.2.3")
    parser.add_argument("--quick", action="store_true", help="tiny counts, one run, no memory phase (a smoke test)")
    parser.add_argument("--drive", help=argparse.SUPPRESS)
    parser.add_argument("--host", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        return drive(args)
    if args.quick:
        args.requests, args.runs = 60, 1

    work = Path(tempfile.mkdtemp(prefix="authsome-bench-"))
    procs: list[subprocess.Popen] = []
    # SIGTERM (a timeout, CI) cleans up like Ctrl-C: nginx stopped, the throwaway CA and home removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        return _bench(args, work, procs)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        shutil.rmtree(work, ignore_errors=True)


def _bench(args, work: Path, procs: list) -> int:
    reference = None if args.no_reference else reference_venv()  # first: an install that fails wastes no run
    ca = make_ca(work / "pki")
    leaf = make_leaf(ca, work / "pki", [ROUTED, TUNNELLED])
    gen = loadgen()
    server, port = nginx(work, leaf)
    procs.append(server)
    site = work / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITE.format(routed=ROUTED, tunnelled=TUNNELLED))
    env = {**os.environ, "AUTHSOME_HOME": str(work / "home"), "SSL_CERT_FILE": str(ca.cert),
           "REQUESTS_CA_BUNDLE": str(ca.cert), "CURL_CA_BUNDLE": str(ca.cert), "AUTHSOME_KEYRING": "0",
           "BENCH_LOADGEN": str(gen), "BENCH_NGINX_PORT": str(port), "BENCH_UPSTREAM_CA": str(ca.cert)}
    for name in ("AUTHSOME_MASTER_KEY", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        env.pop(name, None)
    login = subprocess.run([*AUTHSOME, "login", "openai"], input=KEY, env=env, capture_output=True, text=True)
    if login.returncode != 0:
        raise SystemExit(f"bench: authsome login failed: {login.stderr}")
    resolve = [a for h in (ROUTED, TUNNELLED) for a in ("--resolve", f"{h}:443:127.0.0.1:{port}")]
    me = [sys.executable, str(Path(__file__).resolve())]
    memory = [] if args.quick else ["--memory"]

    def under(prefix: list[str], setup: str, host: str, key: str, extra_env: dict | None = None, *, last: bool) -> dict:
        flags = ["--requests", str(args.requests), "--runs", "1", *(memory if last else [])]
        out = subprocess.run([*prefix, *me, "--drive", setup, "--host", host, "--key", key, *flags],
                             env={**env, **(extra_env or {})}, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"bench: {setup} failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def bare_mitmdump(*, last: bool) -> dict:
        mitm_port = _free_port()
        confdir = work / "mitm"
        mitmdump = Path(sys.executable).with_name("mitmdump")
        bare = subprocess.Popen([str(mitmdump), "-q", "--listen-host", "127.0.0.1", "--listen-port", str(mitm_port),
                                 "--set", f"confdir={confdir}", "--set", f"ssl_verify_upstream_trusted_ca={ca.cert}"],
                                env={**env, "PYTHONPATH": str(site)}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        procs.append(bare)
        try:
            _wait_port(mitm_port)
            bundle = work / "mitm-bundle.pem"
            bundle.write_text(ca.cert.read_text() + (confdir / "mitmproxy-ca-cert.pem").read_text())
            return under([], "mitmdump", ROUTED, KEY, {"HTTPS_PROXY": f"http://127.0.0.1:{mitm_port}",
                                                       "BENCH_PROXY_PID": str(bare.pid), "BENCH_CLIENT_CA": str(bundle)},
                         last=last)
        finally:
            bare.send_signal(signal.SIGINT)
            bare.wait(10)

    ref_env = None
    if reference is not None:
        # HOME too: the reference writes a log under ~/.authsome whatever AUTHSOME_HOME says.
        ref_env = {**env, "AUTHSOME_HOME": str(work / "ref-home"), "PYTHONPATH": str(site), "HOME": str(work)}
        seed = ("from authsome.context import AuthsomeContext\n"
                "from authsome.auth.input_provider import MockInputProvider\n"
                f"AuthsomeContext.create().auth.login_with_result(provider='openai', connection_name='default', "
                f"input_provider=MockInputProvider({{'api_key': {KEY!r}}}))\n")
        seeded = subprocess.run([str(reference / "bin" / "python"), "-c", seed], env=ref_env, capture_output=True,
                                text=True, cwd=work)  # not this checkout's `authsome` package
        if seeded.returncode != 0:
            raise SystemExit(f"bench: could not store the reference's key:\n{seeded.stderr[-2000:]}")
    ref = [str(reference / "bin" / "authsome")] if reference is not None else []
    run = [*AUTHSOME, "run", *resolve, "--"]
    setups = {
        "direct": lambda last: under([], "direct", ROUTED, KEY, last=last),
        "mitmdump": lambda last: bare_mitmdump(last=last),
        "authsome": lambda last: under(run, "authsome", ROUTED, "authsome-proxy-managed", last=last),
        "tunnelled": lambda last: under(run, "tunnelled", TUNNELLED, KEY, {"BENCH_CLIENT_CA": str(ca.cert)}, last=last),
    }
    if reference is not None:
        setups["reference"] = lambda last: under([*ref, "run", "--"], "reference", ROUTED, "authsome-proxy-managed",
                                                 ref_env, last=last)
    # One repetition of every setup in turn, so that the machine's noise falls on all of them alike.
    rounds: dict[str, list[dict]] = {name: [] for name in setups}
    for rep in range(args.runs):
        for name, measure in setups.items():
            print(f"bench: {name} ({rep + 1}/{args.runs})", file=sys.stderr)
            rounds[name].append(measure(rep == args.runs - 1))
    results = {name: _merged(found) for name, found in rounds.items()}

    commands = {
        "--help": ["--help"], "list": ["list"], "get openai --field status": ["get", "openai", "--field", "status"],
        "run -- /bin/true": ["run", "--", "/bin/true"],
        "one run -- curl request": ["run", *resolve, "--", "curl", "-s", "-o", "/dev/null", "-H",
                                    "Authorization: Bearer authsome-proxy-managed", f"https://{ROUTED}/bench"],
    }
    reps = 1 if args.quick else max(5, args.runs * 2)
    who = {"authsome": (AUTHSOME, env, commands)}
    if reference is not None:
        who["reference"] = (ref, ref_env, {**commands, "one run -- curl request":
                                           ["run", "--", *commands["one run -- curl request"][4:]]})
    samples: dict[str, dict[str, list[float]]] = {w: {name: [] for name in commands} for w in who}
    for _ in range(reps):  # interleaved, like the loads
        for w, (prefix, wenv, cmds) in who.items():
            for name, argv in cmds.items():
                samples[w][name].append(wall([*prefix, *argv], wenv, 1))
    walls = {w: {name: statistics.median(times) for name, times in by.items()} for w, by in samples.items()}

    print(report(results, walls, args))
    return 0


# -- the table -----------------------------------------------------------------------------

def _merged(rounds: list[dict]) -> dict:
    """The repetitions of one setup as one: every concurrent load, medians of the single loads."""
    out = dict(rounds[-1])  # the memory figures come from the last repetition
    out["concurrent"] = [c for r in rounds for c in r["concurrent"]]
    out["cpu_ms"] = [c for r in rounds for c in r["cpu_ms"]]
    for phase in ("sequential", "newconn", "nosni"):
        loads = [r[phase] for r in rounds]
        statuses: dict[str, int] = {}
        for load in loads:
            for code, n in load["statuses"].items():
                statuses[code] = statuses.get(code, 0) + n
        out[phase] = {"p50": statistics.median(x["p50"] for x in loads), "rps": statistics.median(x["rps"] for x in loads),
                      "failures": sum(x["failures"] for x in loads), "statuses": statuses}
    return out


def report(results: dict, walls: dict, args) -> str:
    columns = [c for c in ("direct", "mitmdump", "reference", "authsome", "tunnelled") if c in results]
    titles = {"direct": "direct", "mitmdump": "bare mitmdump", "reference": "authsome 0.2.3",
              "authsome": "authsome (injecting)", "tunnelled": "authsome (tunnelled host)"}

    def med(setup: str, key: str) -> float:
        return statistics.median(r[key] for r in results[setup]["concurrent"])

    def failures(setup: str) -> int:
        r = results[setup]
        phases = [*r["concurrent"], r["sequential"], r["newconn"], r["nosni"]]
        return sum(p["failures"] + sum(v for k, v in p["statuses"].items() if k != "200") for p in phases) \
            + r.get("memory_401", 0)

    rows = [
        ("req/s, 16 keep-alive connections", lambda s: med(s, "rps"), "{:.0f}", True),
        ("p50 ms (c=16)", lambda s: med(s, "p50"), "{:.1f}", False),
        ("p99 ms (c=16)", lambda s: med(s, "p99"), "{:.1f}", False),
        ("sequential p50 ms (one connection)", lambda s: results[s]["sequential"]["p50"], "{:.2f}", False),
        ("new connection (CONNECT+TLS) p50 ms", lambda s: results[s]["newconn"]["p50"], "{:.1f}", False),
        ("no-SNI client req/s (c=4)", lambda s: results[s]["nosni"]["rps"], "{:.0f}", True),
        ("proxy CPU ms per request", lambda s: statistics.median(results[s]["cpu_ms"]) if results[s]["cpu_ms"] else None,
         "{:.2f}", False),
        ("RSS MiB after 1,000 requests", lambda s: results[s].get("rss_1k"), "{:.0f}", False),
        ("RSS MiB after 10,000 requests", lambda s: results[s].get("rss_10k"), "{:.0f}", False),
        ("peak RSS MiB", lambda s: results[s].get("rss_peak"), "{:.0f}", False),
        ("requests not answered 200", failures, "{:.0f}", None),
    ]
    lines = [f"requests per load: {args.requests}; medians of {args.runs}; ratios to bare mitmdump",
             "", "| figure | " + " | ".join(titles[c] for c in columns) + " |",
             "|---|" + "--:|" * len(columns)]
    for label, get, fmt, higher_better in rows:
        cells = []
        base = get("mitmdump") if "mitmdump" in results else None
        for c in columns:
            value = get(c)
            if value is None:
                cells.append("–")
                continue
            cell = fmt.format(value)
            if higher_better is not None and base and c not in ("mitmdump", "direct"):
                cell += f" ({value / base:.2f}x)"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "| command (wall s, median) | " + " | ".join(walls) + " |", "|---|" + "--:|" * len(walls)]
    for name in walls["authsome"]:
        cells = []
        for who in walls:
            t = walls[who].get(name)
            cell = f"{t:.3f}" if t is not None else "–"
            if who == "authsome" and "reference" in walls and walls["reference"].get(name):
                cell += f" ({t / walls['reference'][name]:.2f}x)"
            cells.append(cell)
        lines.append(f"| `authsome {name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
