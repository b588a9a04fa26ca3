"""Shared by the HTTP benchmarks: wrk as the load, nginx as the neutral upstream, /proc CPU,
and an event-loop lag probe for the Python servers under test.

Why these tools: on a 2-core machine a Python load generator costs more CPU per request than
the proxy it measures and caps every row. Debian's ``wrk`` (C, epoll) and ``nginx`` answering a
fixed document cost a few µs per request, so the Python process under test is what saturates.
``bench/setup.sh`` installs both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"

# Runs inside wrk (LuaJIT) once the run is over: the figures as one JSON line on stdout.
_REPORT_LUA = """
done = function(summary, latency, requests)
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,"write":%d,'
    .. '"timeout":%d,"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,"max_us":%.0f}\\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def need_tools() -> None:
    """Stop with a clear message when wrk or nginx is missing."""
    missing = [tool for tool in ("wrk", "nginx") if _which(tool) is None]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: run bench/setup.sh (apt-get install)")


def _which(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/bin")


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    """Block until something accepts TCP connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listening on {HOST}:{port} after {timeout}s")


# --- the neutral upstream -----------------------------------------------------------------------


@contextlib.contextmanager
def nginx_upstream(workdir: Path, port: int, routes: dict[str, bytes]) -> Iterator[int]:
    """nginx on 127.0.0.1:``port`` answering each ``routes`` path with its JSON body (200).

    Like an API it refuses a request without ``Authorization: Bearer …`` (401) and answers 404
    elsewhere. One worker process. Yields the master's pid (CPU is summed over its workers).
    """
    root = workdir / f"nginx-{port}"
    root.mkdir()
    locations = "\n".join(
        f"""
        location = {path} {{
            if ($http_authorization !~ "^Bearer .+") {{ return 401 '{{"error":"invalid_token"}}'; }}
            return 200 '{body.decode()}';
        }}"""
        for path, body in routes.items()
    )
    (root / "nginx.conf").write_text(
        f"""
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    keepalive_requests 1000000;
    default_type application/json;
    server {{
        listen {HOST}:{port} backlog=4096;
        {locations}
        location / {{ return 404 '{{"error":"not_found"}}'; }}
    }}
}}
"""
    )
    nginx = _which("nginx")
    assert nginx is not None
    proc = subprocess.Popen(
        [nginx, "-p", str(root), "-c", str(root / "nginx.conf"), "-e", "stderr"]
    )
    try:
        wait_for_port(port)
        yield proc.pid
    finally:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- the load -----------------------------------------------------------------------------------


def run_wrk(
    url: str,
    headers: dict[str, str],
    *,
    duration: float,
    connections: int,
    threads: int,
    workdir: Path,
) -> dict[str, Any]:
    """One wrk run: req/s (2xx only), p50/p99 in ms, errors, and wrk's own CPU per request."""
    script = workdir / "report.lua"
    if not script.exists():
        script.write_text(_REPORT_LUA)
    wrk = _which("wrk")
    assert wrk is not None
    command = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command += ["-s", str(script), url]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"wrk failed ({proc.returncode}): {err}{out}")
    report = json.loads(out.strip().splitlines()[-1])
    errors = sum(report[k] for k in ("non2xx", "connect", "read", "write", "timeout"))
    ok = report["requests"] - report["non2xx"]
    seconds = report["duration_us"] / 1e6
    return {
        "requests": ok,
        "errors": errors,
        "rps": ok / seconds,
        "p50_ms": report["p50_us"] / 1000,
        "p90_ms": report["p90_us"] / 1000,
        "p99_ms": report["p99_us"] / 1000,
        "max_ms": report["max_us"] / 1000,
        "loadgen_cpu_us": 1e6 * (usage.ru_utime + usage.ru_stime) / max(1, ok),
        # wrk counts a request unanswered after its 2 s timeout as a "timeout" error.
        "error_kinds": {
            k: report[k] for k in ("non2xx", "connect", "read", "write", "timeout") if report[k]
        },
    }


def warm(url: str, headers: dict[str, str], workdir: Path, connections: int) -> None:
    """A one-second run whose figures are thrown away (connections, caches, code paths)."""
    result = run_wrk(url, headers, duration=1, connections=connections, threads=1, workdir=workdir)
    if result["requests"] == 0 or result["errors"]:
        raise SystemExit(f"{url} is not answering 200 during warm-up: {result}")


# --- CPU accounting -----------------------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int(_stat(int(entry.name))[1]) == pid:
                    kids.append(int(entry.name))
    return kids


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (worker processes of nginx or of a multi-worker server)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(_children(current))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by these processes (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = _stat(pid)
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


# --- event-loop lag (runs inside the server under test) ----------------------------------------


class LagProbe:
    """ASGI wrapper that measures how late a 10 ms timer fires on the server's event loop.

    Once a second it appends ``{"t": unix time, "max_ms": worst lateness}`` to ``path``; the
    driver takes the maximum over each measurement's time window. A late timer means some
    callback held the loop (a synchronous wait, a long computation) or the process was not
    scheduled; the bare forwarder carries the same probe, so the two can be compared.
    """

    def __init__(self, app: Any, path: Path) -> None:
        self.app = app
        self.path = path
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch())
        await self.app(scope, receive, send)

    async def _watch(self) -> None:
        import gc

        gc_worst = [0.0, 0.0, 0.0]
        gc_started = [0.0]

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                gc_started[0] = time.perf_counter()
            else:
                gen = info["generation"]
                gc_worst[gen] = max(gc_worst[gen], time.perf_counter() - gc_started[0])

        gc.callbacks.append(on_gc)
        loop = asyncio.get_running_loop()
        with self.path.open("a", encoding="utf-8") as out:
            worst, window_end = 0.0, time.time() + 1
            while True:
                before = loop.time()
                await asyncio.sleep(0.01)
                worst = max(worst, loop.time() - before - 0.01)
                if time.time() >= window_end:
                    sample = {
                        "t": time.time(),
                        "max_ms": 1000 * worst,
                        "gc_ms": [round(1000 * g, 2) for g in gc_worst],
                    }
                    out.write(json.dumps(sample) + "\n")
                    out.flush()
                    worst, window_end = 0.0, time.time() + 1
                    gc_worst[:] = [0.0, 0.0, 0.0]


def max_lag_ms(path: Path, since: float, until: float) -> tuple[float, float]:
    """The worst event-loop lag, and the longest garbage collection, that a :class:`LagProbe`
    wrote between two times (ms)."""
    worst = gc_worst = 0.0
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                sample = json.loads(line)
                if since <= sample["t"] <= until + 1:
                    worst = max(worst, float(sample["max_ms"]))
                    gc_worst = max(gc_worst, *sample["gc_ms"])
    return worst, gc_worst
