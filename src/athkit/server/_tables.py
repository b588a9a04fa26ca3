"""The engine's SQL schema: one MetaData for every table of ``athkit.server``.

Modules that own a kind of record define their tables against this ``metadata``; the
migrations in ``athkit/server/migrations`` create them (version table
``server_alembic_version``).
"""

from __future__ import annotations

from athkit.storage import new_metadata

metadata = new_metadata()
