"""Alembic migrations of the OAuth server (run with ``athkit.storage.run_migrations``)."""
