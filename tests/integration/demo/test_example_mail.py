"""Example Mail, the gateway story's unchanged provider: its API trusts only tokens that its
own OAuth server says are active (RFC 7662 introspection)."""

from __future__ import annotations

import httpx

from athkit.demo._stack import gateway_stack


def test_the_mail_api_refuses_anything_but_an_active_provider_token() -> None:
    with gateway_stack() as stack:
        missing = httpx.get(f"{stack.mail_url}/messages")
        assert (missing.status_code, missing.json()["error"]) == (401, "unauthorized")
        forged = httpx.get(
            f"{stack.mail_url}/messages", headers={"Authorization": "Bearer made-up"}
        )
        assert (forged.status_code, forged.json()["error"]) == (401, "invalid_token")
        # The gateway is up in front of it, with its catalog.
        catalog = httpx.get(f"{stack.gateway_url}/.well-known/ath.json").json()
        assert [p["provider_id"] for p in catalog["supported_providers"]] == ["example-mail"]
