"""Agent identity URLs: only the canonical form is an identity (ATH §2)."""

from __future__ import annotations

import pytest

from athkit.protocol import AgentIdError, canonical_agent_id, check_agent_id, same_agent_id

CANONICAL = [
    "https://agent.example/.well-known/agent.json",
    "https://agent.example/",
    "https://agent.example:8443/a/b/",
    "https://xn--bcher-kva.example/agent.json",
    "https://203.0.113.9/agent.json",
    "https://[2001:db8::1]/agent.json",
    "http://127.0.0.1:51234/.well-known/agent.json",
    "http://[::1]:8080/agent.json",
    "http://localhost:8080/agent.json",
    "https://agent.example/a%2Fb/agent.json",
]


@pytest.mark.parametrize("value", CANONICAL)
def test_canonical_ids_are_accepted_as_they_are(value: str) -> None:
    assert check_agent_id(value) == value
    assert canonical_agent_id(value) == value


SPELLINGS = [
    (
        "HTTPS://Agent.Example/.well-known/agent.json",
        "https://agent.example/.well-known/agent.json",
    ),
    ("https://agent.example:443/agent.json", "https://agent.example/agent.json"),
    ("https://agent.example:/agent.json", "https://agent.example/agent.json"),
    ("http://127.0.0.1:80/agent.json", "http://127.0.0.1/agent.json"),
    ("https://agent.example", "https://agent.example/"),
    ("https://agent.example/%7Eme/agent%2ejson", "https://agent.example/~me/agent.json"),
    ("https://agent.example/a%2fb", "https://agent.example/a%2Fb"),
    ("https://[2001:DB8:0:0::1]/agent.json", "https://[2001:db8::1]/agent.json"),
    ("https://agent.example:08443/x", "https://agent.example:8443/x"),
]


@pytest.mark.parametrize(("spelling", "canonical"), SPELLINGS)
def test_other_spellings_are_refused_with_the_canonical_one_named(
    spelling: str, canonical: str
) -> None:
    assert canonical_agent_id(spelling) == canonical
    with pytest.raises(AgentIdError) as info:
        check_agent_id(spelling)
    assert info.value.reason == "not_canonical"
    assert info.value.canonical == canonical
    assert canonical in str(info.value)
    assert same_agent_id(spelling, canonical)


REFUSED = [
    ("http://agent.example/agent.json", "scheme"),
    ("http://10.0.0.5/agent.json", "scheme"),
    ("ftp://agent.example/agent.json", "scheme"),
    ("https:agent.example/agent.json", "scheme"),
    ("agent.example/agent.json", "scheme"),
    ("https://user@agent.example/agent.json", "userinfo"),
    ("https://agent.example@evil.example/agent.json", "userinfo"),
    ("https://agent.example/agent.json#me", "fragment"),
    ("https://agent.example/agent.json?v=1", "query"),
    ("https://agent.example/a/../agent.json", "dot_segment"),
    ("https://agent.example/./agent.json", "dot_segment"),
    ("https://agent.example/a/%2E%2E/agent.json", "dot_segment"),
    ("https://agent.example//agent.json", "empty_segment"),
    ("https://agent.example/a//b", "empty_segment"),
    ("https://agent.example./agent.json", "host"),
    ("https://127.1/agent.json", "host"),
    ("https://0x7f.0.0.1/agent.json", "host"),
    ("https://ag_ent.example/agent.json", "host"),
    ("https://ag%65nt.example/agent.json", "host"),
    ("https:///agent.json", "host"),
    ("https://agent.example:99999/agent.json", "port"),
    ("https://agent.example:0/agent.json", "port"),
    ("https://agent.example:x/agent.json", "port"),
    ("https://bücher.example/agent.json", "bad_characters"),
    ("https://agent.example/a b", "bad_characters"),
    ("https://agent.example/a\\b", "bad_characters"),
    ("https://agent.example/100%", "bad_escape"),
    ("https://agent.example/<x>", "bad_characters"),
    ("", "empty"),
    ("https://agent.example/" + "a" * 2100, "too_long"),
]


@pytest.mark.parametrize(("value", "reason"), REFUSED)
def test_urls_that_are_no_identity_are_refused(value: str, reason: str) -> None:
    with pytest.raises(AgentIdError) as info:
        canonical_agent_id(value)
    assert info.value.reason == reason
    assert not same_agent_id(value, "https://agent.example/agent.json")


def test_a_query_only_when_the_operator_allows_it() -> None:
    value = "https://agent.example/agent.json?tenant=a%2fb"
    assert canonical_agent_id(value, allow_query=True) == (
        "https://agent.example/agent.json?tenant=a%2Fb"
    )
    with pytest.raises(AgentIdError):
        check_agent_id(value)


def test_different_agents_stay_different() -> None:
    base = "https://agent.example/agent.json"
    for other in (
        "https://agent.example/Agent.json",
        "https://agent.example:8443/agent.json",
        "https://other.example/agent.json",
        "http://agent.example/agent.json",
    ):
        assert not same_agent_id(other, base)
