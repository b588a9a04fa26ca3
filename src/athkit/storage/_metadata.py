"""The one naming convention every athkit schema uses for its constraints and indexes."""

from __future__ import annotations

from sqlalchemy import MetaData

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
