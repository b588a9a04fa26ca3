"""The agent SDK: connect an agent to any ATH gateway or native service.

Clients (:class:`AsyncATHClient`, sync :class:`ATHClient`), identity helpers (keys, the identity
document, a development host), a credential store, and :func:`authorize_interactive` for
command-line agents. Every failure is an :class:`ATHClientError` carrying the ATH code and
HTTP status.
"""

from athkit.agent._client import DEFAULT_TIMEOUT, AsyncATHClient, ATHClient
from athkit.agent._config import AgentConfig, ServerEntry
from athkit.agent._core import (
    LOOPBACK_REDIRECT_URI,
    Discovery,
    Mode,
    PendingAuthorization,
    check_default_headers,
    is_ath_error,
    new_state,
)
from athkit.agent._errors import (
    AUTHORIZATION_TIMEOUT,
    BAD_RESPONSE,
    HTTP_ERROR,
    NETWORK_ERROR,
    NOT_AUTHORIZED,
    NOT_REGISTERED,
    PROVIDER_REQUIRED,
    STATE_MISMATCH,
    TOKEN_EXPIRED,
    USER_DENIED,
    WRONG_MODE,
    ATHClientError,
    CredentialStoreError,
)
from athkit.agent._files import CONFIG_DIR_ENV, config_dir, default_config_dir
from athkit.agent._identity import (
    IDENTITY_CACHE_CONTROL,
    IDENTITY_PATH,
    build_identity_document,
    generate_key,
    load_key,
    loopback_agent_id,
    save_key,
    serve_identity,
    serve_identity_async,
)
from athkit.agent._interactive import authorize_interactive, authorize_interactive_async
from athkit.agent._loopback import LoopbackListener
from athkit.agent._store import (
    CredentialStore,
    MemoryCredentialStore,
    StoredClient,
    StoredToken,
)
from athkit.protocol import AGENT_ID_HEADER, ATTESTATION_HEADER

__all__ = [
    "AGENT_ID_HEADER",
    "ATTESTATION_HEADER",
    "AUTHORIZATION_TIMEOUT",
    "BAD_RESPONSE",
    "CONFIG_DIR_ENV",
    "DEFAULT_TIMEOUT",
    "HTTP_ERROR",
    "IDENTITY_CACHE_CONTROL",
    "IDENTITY_PATH",
    "LOOPBACK_REDIRECT_URI",
    "NETWORK_ERROR",
    "NOT_AUTHORIZED",
    "NOT_REGISTERED",
    "PROVIDER_REQUIRED",
    "STATE_MISMATCH",
    "TOKEN_EXPIRED",
    "USER_DENIED",
    "WRONG_MODE",
    "ATHClient",
    "ATHClientError",
    "AgentConfig",
    "AsyncATHClient",
    "CredentialStore",
    "CredentialStoreError",
    "Discovery",
    "LoopbackListener",
    "MemoryCredentialStore",
    "Mode",
    "PendingAuthorization",
    "ServerEntry",
    "StoredClient",
    "StoredToken",
    "authorize_interactive",
    "authorize_interactive_async",
    "build_identity_document",
    "check_default_headers",
    "config_dir",
    "default_config_dir",
    "generate_key",
    "is_ath_error",
    "load_key",
    "loopback_agent_id",
    "new_state",
    "save_key",
    "serve_identity",
    "serve_identity_async",
]
