"""A real nginx on loopback, for tests and benchmarks of forward-auth configurations.

``run_nginx`` writes a complete ``nginx.conf`` around an ``http``-context snippet (such as
``ath gateway nginx-config`` prints) into a private directory — pid file, error log and temporary
paths all inside it — and runs Debian's ``/usr/sbin/nginx`` in the foreground (``daemon off``,
master process on), as root or not (no ``user`` directive: as root the workers run as
``nobody``; the directory is made reachable for them). It stops nginx with SIGQUIT (graceful),
then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

NGINX = "/usr/sbin/nginx"


class NginxError(RuntimeError):
    """nginx is missing, refused its configuration or did not start listening."""


@dataclass(frozen=True)
class NginxHandle:
    """A running nginx: its process, directory and error log."""

    process: subprocess.Popen[bytes]
    directory: Path

    @property
    def error_log(self) -> str:
        """What nginx wrote to its error log so far."""
        path = self.directory / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def pid(self) -> int:
        """The master process id."""
        return self.process.pid


def nginx_binary() -> str | None:
    """Path of the nginx executable, or ``None`` when nginx is not installed."""
    if os.access(NGINX, os.X_OK):
        return NGINX
    return shutil.which("nginx")


def full_config(directory: Path, *, workers: int = 1) -> str:
    """A whole ``nginx.conf`` including ``directory/site.conf`` (http context), confined there."""
    d = directory
    return f"""daemon off;
master_process on;
worker_processes {workers};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    server_tokens off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {d}/site.conf;
}}
"""


@contextlib.contextmanager
def run_nginx(
    http_snippet: str,
    directory: Path,
    *,
    port: int,
    workers: int = 1,
    host: str = "127.0.0.1",
    timeout: float = 10.0,
) -> Iterator[NginxHandle]:
    """Run nginx with ``http_snippet`` until the block ends; wait until ``host:port`` listens."""
    binary = nginx_binary()
    if binary is None:
        raise NginxError("nginx is not installed (Debian: apt-get install nginx)")
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)  # workers (nobody, when run as root) read nothing here but need x
    (directory / "site.conf").write_text(http_snippet)
    conf = directory / "nginx.conf"
    conf.write_text(full_config(directory, workers=workers))
    command = [binary, "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log")]
    tested = subprocess.run(  # noqa: S603 (our own command line, no shell)
        [*command, "-t", "-q"], capture_output=True, text=True, timeout=30
    )
    if tested.returncode != 0:
        raise NginxError(f"nginx refused the configuration:\n{tested.stderr}")
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL)  # noqa: S603
    handle = NginxHandle(process, directory)
    try:
        _wait_listening(host, port, process, timeout, handle)
        yield handle
    finally:
        _stop(process)


def _wait_listening(
    host: str, port: int, process: subprocess.Popen[bytes], timeout: float, handle: NginxHandle
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NginxError(f"nginx exited with {process.returncode}:\n{handle.error_log}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise NginxError(f"nginx did not listen on {host}:{port} within {timeout:g} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
