"""The agent's identity (ATH §2): its key, its identity document, and a development host."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from http.server import ThreadingHTTPServer
from pathlib import Path

from athkit.agent._local import BackgroundServer, QuietHandler, off_the_loop
from athkit.protocol import (
    IDENTITY_DOCUMENT_PATH,
    Developer,
    IdentityDocument,
    PrivateKey,
    generate_private_key,
    load_private_key,
    public_key_to_jwk,
    save_private_key,
)

IDENTITY_PATH = IDENTITY_DOCUMENT_PATH
# ATH §2: identity documents should be served with Cache-Control: max-age=300.
IDENTITY_CACHE_CONTROL = "max-age=300"


def generate_key() -> PrivateKey:
    """A new P-256 (ES256) private key for signing attestations."""
    return generate_private_key()


def save_key(key: PrivateKey, path: str | os.PathLike[str]) -> Path:
    """Write ``key`` as PEM to ``path``, readable by its owner only (0600), atomically."""
    return save_private_key(key, path)


def load_key(path: str | os.PathLike[str]) -> PrivateKey:
    """Read a P-256 private key from a PEM file; ``ValueError`` names what is wrong."""
    try:
        return load_private_key(Path(path))
    except FileNotFoundError:
        raise ValueError(f"no key file at {path} (create one with `ath keygen`)") from None
    except OSError as exc:
        raise ValueError(f"cannot read the key file {path}: {exc.strerror}") from None


def loopback_agent_id(port: int, host: str = "127.0.0.1") -> str:
    """The agent_id of an identity document served on a loopback port."""
    return f"http://{host}:{port}{IDENTITY_PATH}"


def build_identity_document(
    key: PrivateKey,
    *,
    agent_id: str,
    name: str,
    developer: Developer | Mapping[str, str],
    capabilities: list[str] | None = None,
) -> IdentityDocument:
    """The identity document to publish at ``agent_id``: who the agent is and its public key."""
    dev = developer if isinstance(developer, Developer) else Developer.model_validate(developer)
    return IdentityDocument(
        agent_id=agent_id,
        name=name,
        developer=dev,
        public_key=public_key_to_jwk(key),
        capabilities=capabilities,
    )


class _IdentityHandler(QuietHandler):
    server: _IdentityHTTPServer

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def _answer(self, *, with_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        if path == IDENTITY_PATH:
            status, body = 200, self.server.body
            extra = {"Cache-Control": IDENTITY_CACHE_CONTROL}
        else:
            status, body, extra = 404, b'{"error":"not found"}', {}
        self.answer(
            status, body, content_type="application/json", headers=extra, with_body=with_body
        )


class _IdentityHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    body: bytes = b""


@contextlib.contextmanager
def serve_identity(
    key: PrivateKey,
    *,
    name: str,
    developer: Developer | Mapping[str, str],
    capabilities: list[str] | None = None,
    port: int = 0,
    host: str = "127.0.0.1",
) -> Iterator[str]:
    """Serve the agent's identity document on ``host:port`` (a free port by default).

    For development and tests: yields the agent_id, ``http://127.0.0.1:PORT/.well-known/agent.json``
    (servers must allow loopback and plain http in their verifier policy to fetch it). The
    document carries ``Cache-Control: max-age=300`` as ATH §2 asks. The server stops when the
    block ends.
    """
    httpd = _IdentityHTTPServer((host, port), _IdentityHandler)
    agent_id = loopback_agent_id(int(httpd.server_address[1]), host)
    document = build_identity_document(
        key, agent_id=agent_id, name=name, developer=developer, capabilities=capabilities
    )
    httpd.body = json.dumps(document.dump()).encode()
    with BackgroundServer(httpd, thread_name="ath-identity"):
        yield agent_id


serve_identity_async = off_the_loop(serve_identity)
