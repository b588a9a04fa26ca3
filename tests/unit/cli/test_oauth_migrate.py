"""``ath oauth migrate``: the OAuth server's schema brought to this release explicitly."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from athkit.cli import app

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "oauth-server.toml"


def test_oauth_migrate_then_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATH_OAUTH_SECRET_KEY", "example-session-key-0123456789abcdef")
    monkeypatch.setenv("ATH_SHOP_CLIENT_SECRET", "example-shop-secret-0123456789")
    monkeypatch.setenv("ATH_ORDERS_API_SECRET", "example-orders-api-secret-0123")
    config = tmp_path / "oauth.toml"
    database = tmp_path / "oauth.db"
    config.write_text(
        EXAMPLE.read_text().replace('"sqlite:///ath-oauth.db"', f'"sqlite:///{database}"')
    )
    runner = CliRunner()
    before = runner.invoke(app, ["oauth", "migrate", "--check", "--config", str(config)])
    assert before.exit_code == 1 and "run the migrations first" in before.output
    migrated = runner.invoke(app, ["oauth", "migrate", "--config", str(config)])
    assert migrated.exit_code == 0, migrated.output
    assert "OAuth server migrated from an empty database" in migrated.output
    after = runner.invoke(app, ["oauth", "migrate", "--check", "--config", str(config)])
    assert after.exit_code == 0 and "is at this release's schema" in after.output
