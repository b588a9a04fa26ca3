"""A LangChain tool that calls an ATH-protected API (``athkit[langchain]``, ``langchain-core``
only).

:class:`ATHAPITool` is one API call — a method and a path under the service's ``api_base``
(native mode) or under ``/ath/proxy/{provider_id}`` (gateway mode) — made with the agent's
stored ATH token by an :class:`~athkit.agent.ATHClient` (and, for ``ainvoke``, an
:class:`~athkit.agent.AsyncATHClient` when given). Arguments named in the path template
(``/products/{product_id}``) fill it; the others go in the query string for ``GET``/``DELETE``
and in the JSON body otherwise.

An ATH refusal (``SCOPE_NOT_APPROVED``, ``TOKEN_REVOKED`` …) raises ``ToolException`` with the
code first, so an agent loop with ``handle_tool_error=True`` (the default here) shows the model
why, instead of crashing; the provider's own answers come back as they are.
"""

from __future__ import annotations

import json
import string
from typing import Any
from urllib.parse import quote

import httpx
from langchain_core.tools import BaseTool, ToolException

from athkit.agent import AsyncATHClient, ATHClient, ATHClientError
from athkit.agent._core import error_from_response, is_ath_error

__all__ = ["ATHAPITool"]

_BODYLESS = frozenset({"GET", "DELETE", "HEAD"})


def _path_fields(template: str) -> list[str]:
    return [field for _, field, _, _ in string.Formatter().parse(template) if field]


class ATHAPITool(BaseTool):
    """One ATH-protected API call as a LangChain tool (see the module docstring)."""

    client: ATHClient
    async_client: AsyncATHClient | None = None
    method: str = "GET"
    path: str
    provider_id: str | None = None
    handle_tool_error: Any = True

    def _split(self, arguments: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        fields = _path_fields(self.path)
        missing = [f for f in fields if f not in arguments]
        if missing:
            raise ToolException(f"missing argument(s) for {self.path}: {', '.join(missing)}")
        values = {f: str(arguments[f]) for f in fields}
        if any(v in ("", ".", "..") for v in values.values()):
            raise ToolException(f"path arguments must be non-empty names: {values}")
        # Each value is one path segment: a "/" or "?" in it cannot reach another route.
        path = self.path.format(**{f: quote(v, safe="") for f, v in values.items()})
        rest = {k: v for k, v in arguments.items() if k not in fields and v is not None}
        return path, rest

    def _send_kwargs(self, rest: dict[str, Any]) -> dict[str, Any]:
        if self.method.upper() in _BODYLESS:
            return {"params": rest or None}
        return {"json": rest}

    @staticmethod
    def _result(response: httpx.Response) -> str:
        if is_ath_error(response):
            error = error_from_response(response)
            raise ToolException(f"{error.code} (HTTP {error.status}): {error.message}")
        text = response.text
        if response.status_code >= 400:
            raise ToolException(f"the API answered HTTP {response.status_code}: {text[:500]}")
        try:
            return json.dumps(response.json(), ensure_ascii=False)
        except ValueError:
            return text

    def _send(self, client: ATHClient | AsyncATHClient, path: str, rest: dict[str, Any]) -> Any:
        """Make the call with ``client``: through its gateway's proxy, or straight to a native
        service. What the async client answers is to be awaited."""
        kwargs: dict[str, Any] = {"raise_for_ath_error": False, **self._send_kwargs(rest)}
        if client.mode == "gateway":
            if self.provider_id is None:
                raise ToolException("a gateway tool needs provider_id")
            return client.proxy(self.provider_id, self.method, path, **kwargs)
        return client.request(self.method, path, provider_id=self.provider_id, **kwargs)

    def _run(self, **arguments: Any) -> str:
        arguments.pop("run_manager", None)
        path, rest = self._split(arguments)
        try:
            if self.client.mode is None:
                self.client.discover()
            response = self._send(self.client, path, rest)
        except ATHClientError as exc:
            raise ToolException(str(exc)) from exc
        return self._result(response)

    async def _arun(self, **arguments: Any) -> str:
        if self.async_client is None:
            return str(await super()._arun(**arguments))
        arguments.pop("run_manager", None)
        path, rest = self._split(arguments)
        client = self.async_client
        try:
            if client.mode is None:
                await client.discover()
            response = await self._send(client, path, rest)
        except ATHClientError as exc:
            raise ToolException(str(exc)) from exc
        return self._result(response)
