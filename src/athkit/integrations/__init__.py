"""ATH where agents live: adapters for agent frameworks, each an optional extra.

- :mod:`athkit.integrations.mcp` — the Model Context Protocol, on both sides (``pip install
  'athkit[mcp]'``);
- :mod:`athkit.integrations.langchain` — a LangChain tool calling an ATH API (``pip install
  'athkit[langchain]'``).

Nothing here is imported by the rest of athkit: a module is loaded only when you import it.
"""

__all__: list[str] = []
