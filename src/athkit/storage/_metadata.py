"""The one naming convention every athkit schema uses for its constraints and indexes, and the
columns that several schemas define alike."""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, MetaData, String

#: Constraint and index names, so that migrations can name what they drop or alter.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    """A fresh ``MetaData`` for one part's tables, with :data:`NAMING_CONVENTION`."""
    return MetaData(naming_convention=NAMING_CONVENTION)


def hash_key(name: str) -> Column[str]:
    """A primary key that is the SHA-256 (hex) of a secret the browser or client holds (a
    cookie, a code, a token): the secret itself is never stored."""
    return Column(name, String(64), primary_key=True)


def created_at() -> Column[float]:
    """When the row was written (POSIX seconds)."""
    return Column("created_at", Float, nullable=False)


def expires_at() -> Column[float]:
    """When the row stops counting (POSIX seconds), indexed for the purge of expired rows."""
    return Column("expires_at", Float, nullable=False, index=True)


def failure_window() -> tuple[Column[int], Column[float]]:
    """A password-guessing brake's count: the failed sign-ins in the current window, and when
    that window began (POSIX seconds)."""
    return (
        Column("failures", Integer, nullable=False),
        Column("window_start", Float, nullable=False),
    )
