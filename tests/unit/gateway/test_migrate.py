"""``migrate_on_start = false``: the gateway refuses to start on a schema that is not this
release's, until ``ath gateway migrate`` has brought it there."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from athkit.cli import app as cli
from athkit.gateway import create_gateway_app, load_config
from athkit.storage import SchemaError

CONFIG = """\
public_base_url = "https://gateway.example"
database_url = "sqlite:///gateway.db"
secret_key_file = "secret_key"
migrate_on_start = false

[providers.mail]
display_name = "Mail"
authorization_endpoint = "https://mail.example/authorize"
token_endpoint = "https://mail.example/token"
client_id = "gw"
client_secret_file = "mail_secret"
scopes = ["mail:read"]
api_base = "https://api.mail.example"

[providers.mail.routes]
"mail:read" = ["GET /messages"]
"""


def test_gateway_refuses_an_unmigrated_database_until_ath_gateway_migrate(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("k" * 40)
    (tmp_path / "mail_secret").write_text("mail-client-secret")
    config = tmp_path / "gateway.toml"
    config.write_text(CONFIG)

    refusing = TestClient(create_gateway_app(load_config(config)))
    with pytest.raises(SchemaError, match="run the migrations first"), refusing:
        pass

    runner = CliRunner()
    check = runner.invoke(cli, ["gateway", "migrate", "--check", "--config", str(config)])
    assert check.exit_code == 1 and "run the migrations first" in check.output
    migrated = runner.invoke(cli, ["gateway", "migrate", "--config", str(config)])
    assert migrated.exit_code == 0, migrated.output
    assert "migrated from an empty database to this release's schema" in migrated.output
    # The console's tables too (its own version table), when the console is on (the default).
    assert "console migrated from an empty database" in migrated.output
    assert str(tmp_path / "gateway.db") in migrated.output  # relative to the config file

    with TestClient(create_gateway_app(load_config(config))) as client:
        assert client.get("/readyz").json()["checks"]["database"] == "ok"
