"""Private files under the user's config directory: 0600, written atomically, locked."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from athkit.agent._errors import CredentialStoreError

M = TypeVar("M", bound=BaseModel)
APP_DIR_NAME = "athkit"
CONFIG_DIR_ENV = "ATH_CONFIG_DIR"


def default_config_dir() -> Path:
    """``$XDG_CONFIG_HOME/athkit`` (XDG Base Directory spec), else ``~/.config/athkit``."""
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    # The XDG spec: a relative $XDG_CONFIG_HOME is invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".config"
    return base / APP_DIR_NAME


def config_dir() -> Path:
    """``$ATH_CONFIG_DIR`` if set, else :func:`default_config_dir`."""
    override = os.environ.get(CONFIG_DIR_ENV)
    return Path(override) if override else default_config_dir()


def ensure_private_dir(directory: Path) -> None:
    """Create ``directory`` (0700) if missing."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise CredentialStoreError(
            str(directory), f"cannot create directory: {exc.strerror}"
        ) from None


def read_json_file(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or ``None`` when it does not exist.

    Refuses (with :class:`CredentialStoreError`) a symlink, a file others can read or write,
    undecodable bytes and anything but a JSON object — the file holds secrets, so a surprise
    there is treated as tampering, never guessed around.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialStoreError(str(path), f"cannot open: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CredentialStoreError(str(path), "not a regular file")
        if info.st_mode & 0o077:
            raise CredentialStoreError(
                str(path),
                f"permissions {stat.filemode(info.st_mode)} let others read it; "
                f"run `chmod 600 {path}` if you trust its content",
            )
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError as exc:
        raise CredentialStoreError(str(path), f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    try:
        value = json.loads(b"".join(chunks).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CredentialStoreError(
            str(path), "not valid JSON (damaged or edited by hand); fix or delete it"
        ) from None
    if not isinstance(value, dict):
        raise CredentialStoreError(str(path), "does not hold a JSON object; fix or delete it")
    return value


def write_json_file(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` with ``data`` atomically: 0600 temp file, fsync, ``os.replace``."""
    ensure_private_dir(path.parent)
    payload = json.dumps(data, indent=2, sort_keys=True).encode("utf-8") + b"\n"
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise CredentialStoreError(str(path), f"cannot write: {exc.strerror}") from None
    try:
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise CredentialStoreError(str(path), f"cannot write: {exc.strerror}") from None
    # The rename itself must survive a crash too.
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside ``path`` so that two processes never lose an update."""
    ensure_private_dir(path.parent)
    lock_path = path.with_name(f".{path.name}.lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise CredentialStoreError(str(lock_path), f"cannot lock: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def parse_json_file(path: Path, raw: dict[str, Any], model: type[M], *, advice: str) -> M:
    """``raw`` (read from ``path``) as a ``model``; else a :class:`CredentialStoreError` naming
    the first place that does not fit, followed by ``advice``."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise CredentialStoreError(
            str(path), f"unexpected content at {where} ({first['msg']}); {advice}"
        ) from None
