"""The identity-document cache keeps little per agent and is bounded by bytes, not by count."""

from __future__ import annotations

from typing import Any, cast

import pytest

from athkit.protocol import IdentityDocument, generate_private_key, public_key_to_jwk
from athkit.server._fetch import FetchedDocument, IdentityFetcher
from athkit.server._identity import IdentityCache


class _Fetcher:
    """Serves a document per agent_id, padded with ``capabilities`` to a chosen size."""

    def __init__(self, padding: int = 0) -> None:
        self.padding = padding
        self.fetches: list[str] = []
        self.keys: dict[str, Any] = {}

    async def fetch(self, url: str) -> FetchedDocument:
        self.fetches.append(url)
        key = self.keys.setdefault(url, generate_private_key().public_key())
        data: dict[str, Any] = {
            "ath_version": "0.1",
            "agent_id": url,
            "name": "Cached agent",
            "developer": {"name": "Dev", "id": "dev"},
            "public_key": public_key_to_jwk(key),
        }
        if self.padding:
            data["capabilities"] = ["x" * 200] * (self.padding // 200)
        return FetchedDocument(url=url, data=data, max_age=None)


def _cache(fetcher: _Fetcher, **kwargs: Any) -> IdentityCache:
    return IdentityCache(cast(IdentityFetcher, fetcher), clock=lambda: 1_900_000_000.0, **kwargs)


def _agent(n: int) -> str:
    return f"https://agents.test/{n}/agent.json"


async def test_an_entry_is_compact_and_gives_back_the_document_and_key() -> None:
    fetcher = _Fetcher()
    cache = _cache(fetcher)
    identity = await cache.get(_agent(1))
    # The key as its encoded point and the document as JSON: a few hundred bytes, where a parsed
    # key and a pydantic document cost about 4 KB together.
    assert len(identity.point) == 65
    assert identity.size < 1000
    assert cache.cached_bytes == identity.size
    document = identity.document
    assert isinstance(document, IdentityDocument)
    assert document.agent_id == _agent(1) and document.name == "Cached agent"
    assert identity.key.public_key.public_numbers() == fetcher.keys[_agent(1)].public_numbers()
    await cache.get(_agent(1))
    assert fetcher.fetches == [_agent(1)]  # served from the cache


async def test_the_cache_is_bounded_by_bytes_and_evicts_the_oldest() -> None:
    fetcher = _Fetcher()
    one = (await _cache(_Fetcher()).get(_agent(0))).size
    cache = _cache(fetcher, max_bytes=3 * one + one // 2)
    for n in range(5):
        await cache.get(_agent(n))
    assert len(cache) == 3
    assert cache.cached_bytes <= 3 * one + one // 2
    assert cache.cached(_agent(0)) is None and cache.cached(_agent(1)) is None
    assert all(cache.cached(_agent(n)) is not None for n in (2, 3, 4))


@pytest.mark.parametrize("padding", [20_000, 60_000])
async def test_large_documents_count_by_their_size(padding: int) -> None:
    fetcher = _Fetcher(padding=padding)
    cache = _cache(fetcher, max_bytes=100_000)
    for n in range(10):
        identity = await cache.get(_agent(n))
        assert identity.document.agent_id == _agent(n)
    assert cache.cached_bytes <= 100_000
    assert len(cache) == 100_000 // (padding + 500)


async def test_a_document_larger_than_the_whole_budget_is_used_but_not_kept() -> None:
    fetcher = _Fetcher(padding=20_000)
    cache = _cache(fetcher, max_bytes=10_000)
    identity = await cache.get(_agent(1))
    assert identity.document.name == "Cached agent"
    assert len(cache) == 0 and cache.cached_bytes == 0
    await cache.get(_agent(1))
    assert fetcher.fetches == [_agent(1), _agent(1)]
