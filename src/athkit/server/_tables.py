"""The engine's SQL schema: one MetaData for every table of ``athkit.server``.

Modules that own a kind of record define their tables against this ``metadata``; the
migrations in ``athkit/server/migrations`` create them (version table
``server_alembic_version``).
"""

from __future__ import annotations

from sqlalchemy import MetaData

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
