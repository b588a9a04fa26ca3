"""ATH for the Model Context Protocol, with the official ``mcp`` SDK (``athkit[mcp]``).

Server side (native mode): :class:`ATHMcp` guards an ``MCPServer`` — an ATH token on every HTTP
request, scopes per tool, filtered listings, :func:`ath_caller` inside a tool — and
:func:`mount_mcp` serves it next to a native service's ATH endpoints.

Client side (the agent): :class:`ATHAuth` for the SDK's streamable-HTTP transport
(:func:`ath_streamable_http`), and :func:`ath_error` to read an ATH refusal out of an
``MCPError``.
"""

from athkit.integrations.mcp._client import (
    AUTHORIZE_AGAIN,
    ATHAuth,
    ath_error,
    ath_streamable_http,
    authorize_again,
)
from athkit.integrations.mcp._server import ATHMcp, ath_caller, mount_mcp, refusal

__all__ = [
    "AUTHORIZE_AGAIN",
    "ATHAuth",
    "ATHMcp",
    "ath_caller",
    "ath_error",
    "ath_streamable_http",
    "authorize_again",
    "mount_mcp",
    "refusal",
]
