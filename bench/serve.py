"""nsctl serve under load: requests per second and latency of GET /api/v1/namespaces.

    sudo .venv/bin/python bench/serve.py                    # 1,000 extra namespaces, 10 s per case
    sudo .venv/bin/python bench/serve.py --n 100 --seconds 3

Builds the benchmark topology (topology.py), starts ``nsctl serve`` on a free
loopback port (no rate limit), waits until its model holds every namespace
the generator made, then a load generator in a second process keeps C
keep-alive HTTP/1.1 connections busy for S seconds per case (after a short
warm-up) and reports requests per second and latency percentiles.  Cases:
the whole list (served from the bytes cached per model generation), a type
filter (built per request), and /api/v1/status.  Tears everything down and
checks nothing was left.  Prints a markdown table; the full result goes to
bench/results/serve-<time>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).resolve().parent / "results"
CASES = {"list": "/api/v1/namespaces", "list ?type=net": "/api/v1/namespaces?type=net",
         "status": "/api/v1/status"}


# --- the load generator (runs in its own process) --------------------------------------------

def _one_connection(host: str, port: int, path: str, until: float, warm: float,
                    latencies: list[float], errors: list[str], sizes: list[int]) -> None:
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    try:
        while True:
            start = time.perf_counter()
            if start >= until:
                return
            sock.sendall(request)
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    raise ConnectionError("server closed the connection")
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            status = int(head.split(None, 2)[1])
            m = re.search(rb"(?i)content-length:\s*(\d+)", head)
            length = int(m.group(1)) if m else 0
            while len(buf) < length:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("server closed the connection")
                buf += chunk
            body, buf = buf[:length], buf[length:]
            took = time.perf_counter() - start
            if status != 200:
                errors.append(f"HTTP {status}: {body[:200]!r}")
            elif start >= warm:
                latencies.append(took)
                sizes.append(length)
    except OSError as exc:
        errors.append(str(exc))
    finally:
        sock.close()


def client(url: str, path: str, seconds: float, warmup: float, concurrency: int) -> dict:
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    now = time.perf_counter()
    warm, until = now + warmup, now + warmup + seconds
    latencies: list[float] = []
    errors: list[str] = []
    sizes: list[int] = []
    threads = [threading.Thread(target=_one_connection,
                                args=(host, int(port), path, until, warm, latencies, errors,
                                      sizes)) for _ in range(concurrency)]
    cpu0 = os.times()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu1 = os.times()
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {"path": path, "requests": len(latencies), "seconds": seconds,
            "rps": len(latencies) / seconds, "p50_ms": pct(0.50), "p90_ms": pct(0.90),
            "p99_ms": pct(0.99), "max_ms": latencies[-1] * 1000,
            "bytes": sizes[0] if sizes else 0, "errors": errors[:5], "error_count": len(errors),
            "client_cpu_s": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)}


# --- the driver ----------------------------------------------------------------------------------

def _cpu_of(pid: int) -> float:
    """user+system seconds of a process and its reaped children (the refresher's scans)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    argv = [sys.executable, "-m", "nsctl", "serve", "--listen", "127.0.0.1:0", "--rate", "0",
            "--max-age", str(args.max_age)]
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")}
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None   # stderr=PIPE
    ready, _, _ = select.select([proc.stderr], [], [], 60)
    line = proc.stderr.readline().decode() if ready else ""
    m = re.search(r"listening on (http://[0-9.]+:\d+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"nsctl serve did not start: {line!r}")
    return proc, m.group(1)


def _wait_for(url: str, inodes: set[int], timeout: float) -> int:
    """Until the served list holds every generated namespace; how many it holds."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "/api/v1/namespaces", timeout=30) as r:
                found = {d["ns"] for d in json.loads(r.read())["namespaces"]}
            if inodes <= found:
                return len(found)
        except (urllib.error.URLError, OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the server's model never held every generated namespace")
        time.sleep(0.2)


def stop(server: subprocess.Popen | None, result: dict) -> None:
    """Stop the server (SIGTERM), noting its exit status in the result."""
    if server is not None:
        server.send_signal(signal.SIGTERM)
        result["server_exit"] = server.wait(30)


def save(result: dict, topo, kind: str) -> Path:
    """Note what the topology left behind and write the result to bench/results/KIND-TIME.json."""
    from topology import leftovers

    result["left_behind"] = leftovers(topo)
    RESULTS.mkdir(exist_ok=True)
    out_path = RESULTS / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    return out_path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="extra namespaces (default 1000)")
    ap.add_argument("--seconds", type=float, default=10.0, help="per case (default 10)")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--concurrency", type=int, default=4, help="connections (default 4)")
    ap.add_argument("--max-age", type=float, default=5.0)
    ap.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)
    ap.add_argument("--path", default=CASES["list"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.client:
        print(json.dumps(client(args.client, args.path, args.seconds, args.warmup,
                                args.concurrency)))
        return 0

    from run import host_info, loadavg
    from topology import Topology, log

    result: dict = {"host": host_info(), "n": args.n, "concurrency": args.concurrency,
                    "seconds": args.seconds, "cases": {}}
    topo = Topology(args.n)
    server = None
    with topo:
        try:
            server, url = _start_server(args)
            t0 = time.monotonic()
            result["namespaces"] = _wait_for(url, topo.inodes(), 120)
            result["model_ready_s"] = round(time.monotonic() - t0, 2)
            log(f"server at {url} holds {result['namespaces']} namespaces")
            for name, path in CASES.items():
                load = loadavg()
                cpu0 = _cpu_of(server.pid)
                out = subprocess.run([sys.executable, __file__, "--client", url, "--path", path,
                                      "--seconds", str(args.seconds), "--warmup",
                                      str(args.warmup), "--concurrency",
                                      str(args.concurrency)],
                                     capture_output=True, text=True, check=True)
                case = json.loads(out.stdout)
                case["server_cpu_s"] = round(_cpu_of(server.pid) - cpu0, 2)
                case["loadavg_before_after"] = [load, loadavg()]
                result["cases"][name] = case
                log(f"{name}: {case['rps']:.0f} req/s, p99 {case['p99_ms']:.1f} ms")
        finally:
            stop(server, result)
    out_path = save(result, topo, "serve")
    print(f"\nnsctl serve, {result['namespaces']} namespaces ({args.n} extra), "
          f"{args.concurrency} connections, {args.seconds:g} s per case\n")
    print("| request | req/s | p50 ms | p99 ms | max ms | body bytes | errors | load before |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for c in result["cases"].values():
        print(f"| GET {c['path']} | {c['rps']:.0f} | {c['p50_ms']:.1f} | {c['p99_ms']:.1f} | "
              f"{c['max_ms']:.1f} | {c['bytes']} | {c['error_count']} | "
              f"{c['loadavg_before_after'][0]} |")
    print(f"\nfull result: {out_path}"
          + ("" if not result["left_behind"] else f"\nLEFT BEHIND: {result['left_behind']}"))
    return 1 if result["left_behind"] or any(c["error_count"] for c in
                                             result["cases"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
