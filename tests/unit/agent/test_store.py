"""The credential store: private files, atomic writes, loud refusal of tampered files."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from athkit.agent import CredentialStore, CredentialStoreError, StoredClient, StoredToken

SERVER = "http://127.0.0.1:9/"
AGENT = "http://127.0.0.1:8/.well-known/agent.json"


def _client(secret: str = "s3cret") -> StoredClient:
    return StoredClient(agent_id=AGENT, client_id="cid", client_secret=secret, registered_at=1.0)


def _token(provider: str = "mail", expires_at: float = 4_000_000_000.0) -> StoredToken:
    return StoredToken(
        agent_id=AGENT,
        provider_id=provider,
        access_token=f"tok-{provider}",
        effective_scopes=["mail:read"],
        expires_at=expires_at,
    )


def test_files_are_private_and_survive_a_new_store_instance(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "cfg")
    store.save_client(SERVER, _client())
    store.save_token(SERVER, _token())

    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    again = CredentialStore(tmp_path / "cfg")
    assert again.get_client("http://127.0.0.1:9", AGENT) == _client()
    token = again.get_token(SERVER, AGENT, "mail")
    assert token is not None and token.access_token == "tok-mail"
    assert again.get_client(SERVER, "http://other/agent.json") is None


def test_defaults_to_xdg_config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    store = CredentialStore()
    store.save_client(SERVER, _client())
    assert (tmp_path / "xdg" / "athkit" / "credentials.json").is_file()


def test_delete_and_list_tokens(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    store.save_token(SERVER, _token("mail"))
    store.save_token(SERVER, _token("calendar"))
    assert [t.provider_id for _, t in store.tokens(SERVER)] == ["calendar", "mail"]
    removed = store.delete_token(SERVER, AGENT, "mail")
    assert removed is not None and removed.provider_id == "mail"
    assert store.delete_token(SERVER, AGENT, "mail") is None
    assert [t.provider_id for _, t in store.tokens()] == ["calendar"]


def test_expiry_is_reported(tmp_path: Path) -> None:
    token = _token(expires_at=1000.0)
    assert token.is_expired(now=1000.0)
    assert not token.is_expired(now=999.0)
    assert token.expires_in(now=990.0) == 10


def test_write_is_atomic_when_the_disk_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CredentialStore(tmp_path)
    store.save_client(SERVER, _client("old"))
    before = store.path.read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(CredentialStoreError, match="No space left"):
        store.save_client(SERVER, _client("new"))
    monkeypatch.undo()

    assert store.path.read_bytes() == before  # the old file is untouched
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    stored = store.get_client(SERVER, AGENT)
    assert stored is not None and stored.client_secret == "old"


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    def write(n: int) -> None:
        CredentialStore(tmp_path).save_token(SERVER, _token(f"p{n}"))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(CredentialStore(tmp_path).tokens()) == 8


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        (b"[1, 2]", "does not hold a JSON object"),
        (json.dumps({"version": 2, "servers": {}}).encode(), "unexpected content at version"),
        (
            json.dumps({"version": 1, "servers": {SERVER: {"clients": {"a": {"x": 1}}}}}).encode(),
            "unexpected content",
        ),
        (json.dumps({"version": 1, "servers": {}, "evil": True}).encode(), "unexpected content"),
    ],
)
def test_tampered_file_is_refused_with_a_clear_error(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    store = CredentialStore(tmp_path)
    store.path.write_bytes(content)
    store.path.chmod(0o600)
    with pytest.raises(CredentialStoreError, match=reason) as info:
        store.get_client(SERVER, AGENT)
    assert str(store.path) in str(info.value)
    # Writing must not silently replace the damaged file either.
    with pytest.raises(CredentialStoreError):
        store.save_client(SERVER, _client())
    assert store.path.read_bytes() == content


def test_world_readable_file_is_refused(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    store.save_client(SERVER, _client())
    store.path.chmod(0o644)
    with pytest.raises(CredentialStoreError, match="chmod 600"):
        store.get_client(SERVER, AGENT)


def test_symlinked_file_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text('{"version": 1, "servers": {}}')
    elsewhere.chmod(0o600)
    store = CredentialStore(tmp_path / "cfg")
    store.directory.mkdir()
    store.path.symlink_to(elsewhere)
    with pytest.raises(CredentialStoreError, match="cannot open"):
        store.get_client(SERVER, AGENT)


def test_unreadable_file_is_refused(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    store = CredentialStore(tmp_path)
    store.save_client(SERVER, _client())
    store.path.chmod(0o000)
    with pytest.raises(CredentialStoreError, match="cannot open"):
        store.get_client(SERVER, AGENT)


def test_a_directory_in_place_of_the_file_is_refused(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    store.path.mkdir()
    with pytest.raises(CredentialStoreError, match="not a regular file"):
        store.tokens()
