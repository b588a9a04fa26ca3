"""The OpenAPI 3.1 document of the ATH endpoints, generated from the pydantic models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from athkit import __version__
from athkit.protocol import (
    ADMIN_PREFIX,
    AGENTS_PATH,
    APP_DISCOVERY_PATH,
    ATTESTATION_HEADER,
    AUTHORIZE_PATH,
    CALLBACK_PATH,
    CONSENT_PATH,
    REGISTER_PATH,
    REVOKE_PATH,
    TOKEN_PATH,
    USER_GRANTS_PATH,
    USER_REVOKE_PATH,
    AgentStatusResponse,
    AppDiscovery,
    AuthorizeRequest,
    AuthorizeResponse,
    ErrorResponse,
    RegisterRequest,
    RegisterResponse,
    RevokeRequest,
    TokenRequest,
    TokenResponse,
)
from athkit.server._admin import ReasonRequest, ScopesRequest, UserRevokeRequest
from athkit.server._settings import ServerSettings


class _Operations:
    """Builds operation objects and remembers every model they refer to, so that
    ``components.schemas`` holds exactly the schemas the paths use."""

    def __init__(self) -> None:
        self.models: dict[str, type[BaseModel]] = {}

    def _json(self, model: type[BaseModel]) -> dict[str, Any]:
        self.models[model.__name__] = model
        ref = {"$ref": f"#/components/schemas/{model.__name__}"}
        return {"content": {"application/json": {"schema": ref}}}

    def __call__(
        self,
        summary: str,
        *,
        body: type[BaseModel] | None = None,
        ok: type[BaseModel] | None = None,
        ok_status: str = "200",
        errors: tuple[str, ...] = ("400", "401", "403", "404", "500"),
        security: list[dict[str, list[str]]] | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        op: dict[str, Any] = {"summary": summary, "responses": {}}
        if description:
            op["description"] = description
        if body is not None:
            op["requestBody"] = {"required": True, **self._json(body)}
        op["responses"][ok_status] = (
            {"description": "OK", **self._json(ok)} if ok is not None else {"description": "OK"}
        )
        for status in errors:
            op["responses"][status] = {"description": "ATH §7 error", **self._json(ErrorResponse)}
        if security is not None:
            op["security"] = security
        return op

    def schemas(self) -> dict[str, Any]:
        """The JSON Schemas of every model referred to so far (and of the models they use)."""
        _, schemas = models_json_schema(
            [(m, "validation") for m in self.models.values()],
            ref_template="#/components/schemas/{model}",
        )
        defs: dict[str, Any] = schemas.get("$defs", {})
        return defs


def openapi_document(
    settings: ServerSettings, *, include_admin: bool = True, include_user: bool = False
) -> dict[str, Any]:
    """OpenAPI 3.1 for the native-mode ATH endpoints of this service: the admin API when
    ``include_admin`` (and an admin token is set), the signed-in user's ``/ath/user/...``
    routes when ``include_user``."""
    _op = _Operations()
    paths: dict[str, Any] = {
        APP_DISCOVERY_PATH: {
            "get": _op("Service discovery document (ATH §3)", ok=AppDiscovery, errors=())
        },
        REGISTER_PATH: {
            "post": _op(
                "Register an agent (ATH §4.1)",
                body=RegisterRequest,
                ok=RegisterResponse,
                ok_status="201",
                errors=("400", "401", "409", "413", "500"),
            )
        },
        AGENTS_PATH + "{client_id}": {
            "get": {
                **_op(
                    "Read the agent's own registration (ATH §4.2)",
                    ok=AgentStatusResponse,
                    security=[{"clientBasic": []}, {"attestation": []}],
                ),
                "parameters": [
                    {
                        "name": "client_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
            }
        },
        AUTHORIZE_PATH: {
            "post": _op(
                "Start user authorization (ATH §4.3)", body=AuthorizeRequest, ok=AuthorizeResponse
            )
        },
        CONSENT_PATH + "{session_id}": {
            "get": _op(
                "Browser entry: binds the browser and redirects to the provider (ATH §4.3)",
                ok_status="302",
                errors=("400", "404"),
            )
        },
        CALLBACK_PATH: {
            "get": _op(
                "OAuth redirect target (ATH §4.4)",
                ok_status="303",
                errors=("400", "404", "502"),
                description="Redirects to the agent's user_redirect_uri with code and state, "
                "or shows the code on a completion page.",
            )
        },
        TOKEN_PATH: {
            "post": _op(
                "Exchange the ATH code for an access token (ATH §4.5)",
                body=TokenRequest,
                ok=TokenResponse,
            )
        },
        REVOKE_PATH: {
            "post": _op(
                "Revoke a token (ATH §4.7)", body=RevokeRequest, errors=("400", "401", "500")
            )
        },
    }
    if include_admin and settings.admin_token is not None:
        admin: list[dict[str, list[str]]] = [{"adminBearer": []}]
        paths[f"{ADMIN_PREFIX}/agents"] = {"get": _op("List registrations", security=admin)}
        paths[f"{ADMIN_PREFIX}/agents/{{client_id}}"] = {
            "get": _op("Read a registration", security=admin)
        }
        for action in ("approve", "reinstate"):
            paths[f"{ADMIN_PREFIX}/agents/{{client_id}}/{action}"] = {
                "post": _op(f"{action.title()} an agent", security=admin)
            }
        for action in ("deny", "suspend"):
            paths[f"{ADMIN_PREFIX}/agents/{{client_id}}/{action}"] = {
                "post": _op(
                    f"{action.title()} an agent (its tokens die)",
                    body=ReasonRequest,
                    security=admin,
                )
            }
        paths[f"{ADMIN_PREFIX}/agents/{{client_id}}/providers/{{provider_id}}/scopes"] = {
            "put": _op("Set approved scopes", body=ScopesRequest, security=admin)
        }
        paths[f"{ADMIN_PREFIX}/tokens"] = {"get": _op("List tokens", security=admin)}
        paths[f"{ADMIN_PREFIX}/tokens/{{token_id}}/revoke"] = {
            "post": _op("Revoke a token", security=admin)
        }
        paths[f"{ADMIN_PREFIX}/audit"] = {"get": _op("Query audit events", security=admin)}
    if include_user:
        # Whoever the service's own sign-in says (its user authenticator), however it does it.
        signed_in = "For the user the service's own sign-in names; 401 without one."
        paths[USER_GRANTS_PATH] = {
            "get": _op("The agents acting for the signed-in user", description=signed_in)
        }
        paths[USER_REVOKE_PATH] = {
            "post": _op(
                "Disconnect an agent, or revoke one token, for the signed-in user",
                body=UserRevokeRequest,
                errors=("400", "401", "403", "415", "500"),
                description=signed_in + " JSON only; a foreign Origin is refused (CSRF).",
            )
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{settings.name} — ATH endpoints", "version": __version__},
        "servers": [{"url": settings.base_url}],
        "paths": paths,
        "components": {
            "schemas": _op.schemas(),
            "securitySchemes": {
                "clientBasic": {"type": "http", "scheme": "basic"},
                "attestation": {"type": "apiKey", "in": "header", "name": ATTESTATION_HEADER},
                "adminBearer": {"type": "http", "scheme": "bearer"},
                "athToken": {"type": "http", "scheme": "bearer"},
            },
        },
    }
