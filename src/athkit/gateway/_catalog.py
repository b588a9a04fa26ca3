"""``GET /.well-known/ath.json``: the gateway catalog (ATH §3), generated from the providers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from athkit.protocol import REGISTER_PATH, GatewayDiscovery, GatewayProvider

if TYPE_CHECKING:
    from athkit.gateway._settings import GatewaySettings


def catalog(settings: GatewaySettings) -> GatewayDiscovery:
    """The discovery document.

    ``agent_approval_required`` is true when an operator may have to approve an agent for the
    provider: some scopes need review, or only listed agent domains are admitted.
    """
    return GatewayDiscovery(
        gateway_id=settings.gateway_id,
        agent_registration_endpoint=settings.base_url + REGISTER_PATH,
        supported_providers=[
            GatewayProvider(
                provider_id=p.provider_id,
                display_name=p.display_name,
                categories=p.categories or None,
                available_scopes=list(p.scopes),
                auth_mode="OAUTH2",
                agent_approval_required=bool(p.review) or p.allowed_agent_domains is not None,
            )
            for p in settings.providers
        ],
    )
