"""``[providers.<id>.approval] approve_while_reviewing`` reaches the engine's provider settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from athkit.gateway import config_from_mapping, resolve_settings


def _mapping(tmp_path: Path, approval: dict[str, Any]) -> dict[str, Any]:
    (tmp_path / "key").write_text("k" * 40)
    (tmp_path / "mail").write_text("mail-client-secret")
    return {
        "public_base_url": "https://gateway.test",
        "secret_key_file": str(tmp_path / "key"),
        "providers": {
            "mail": {
                "display_name": "Mail",
                "authorization_endpoint": "https://auth.test/authorize",
                "token_endpoint": "https://auth.test/token",
                "client_id": "gateway",
                "client_secret_file": str(tmp_path / "mail"),
                "scopes": ["mail:read", "mail:send"],
                "api_base": "https://mail.test",
                "routes": {"mail:read": ["GET /messages"], "mail:send": ["POST /messages"]},
                "approval": approval,
            }
        },
    }


def test_off_by_default(tmp_path: Path) -> None:
    config = config_from_mapping(_mapping(tmp_path, {"auto_approve": ["mail:read"]}))
    assert resolve_settings(config).providers[0].approve_while_reviewing is False


def test_passed_to_the_engine(tmp_path: Path) -> None:
    approval = {"auto_approve": ["mail:read"], "review": ["mail:send"]}
    config = config_from_mapping(_mapping(tmp_path, {**approval, "approve_while_reviewing": True}))
    provider = resolve_settings(config).providers[0]
    assert provider.approve_while_reviewing is True
    assert provider.review == ["mail:send"]
