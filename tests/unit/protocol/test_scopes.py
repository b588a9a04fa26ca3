"""Scope intersection (ATH §5) and the scope → route map (ATH §4.6)."""

import random
from urllib.parse import unquote

import pytest

from athkit.protocol import (
    RouteRule,
    ScopeIntersection,
    ScopeRouteMap,
    intersect_scopes,
    normalize_request_path,
)

# --- intersection ------------------------------------------------------------------------------


def test_spec_example() -> None:
    result = intersect_scopes(
        ["mail:read", "mail:send"], ["mail:read", "mail:send", "mail:delete"], ["mail:read"]
    )
    assert result == ScopeIntersection(
        agent_approved=["mail:read", "mail:send"],
        user_consented=["mail:read", "mail:send", "mail:delete"],
        effective=["mail:read"],
    )
    assert result.dump() == {
        "agent_approved": ["mail:read", "mail:send"],
        "user_consented": ["mail:read", "mail:send", "mail:delete"],
        "effective": ["mail:read"],
    }


@pytest.mark.parametrize(
    ("approved", "consented", "requested"),
    [
        ([], ["a"], ["a"]),
        (["a"], [], ["a"]),
        (["a"], ["a"], []),
        ([], [], []),
    ],
)
def test_any_empty_set_gives_nothing(
    approved: list[str], consented: list[str], requested: list[str]
) -> None:
    assert intersect_scopes(approved, consented, requested).effective == []


def test_disjoint_sets_give_nothing() -> None:
    result = intersect_scopes(["a", "b"], ["c", "d"], ["a", "c"])
    assert result.effective == []
    assert result.agent_approved == ["a", "b"] and result.user_consented == ["c", "d"]


def test_duplicates_are_removed_keeping_first_seen_order() -> None:
    result = intersect_scopes(["b", "a", "b", "c"], ["c", "a", "a", "b"], ["a", "b", "a", "c"])
    assert result.agent_approved == ["b", "a", "c"]
    assert result.user_consented == ["c", "a", "b"]
    assert result.effective == ["a", "b", "c"]


def test_effective_follows_requested_order() -> None:
    result = intersect_scopes(["x", "y", "z"], ["z", "y", "x"], ["z", "x", "y"])
    assert result.effective == ["z", "x", "y"]


def test_requested_beyond_approval_or_consent_is_dropped() -> None:
    result = intersect_scopes(["a", "b"], ["b", "c"], ["a", "b", "c", "d"])
    assert result.effective == ["b"]


def test_accepts_any_iterables() -> None:
    result = intersect_scopes(iter(["a"]), ("a",), (s for s in ["a"]))
    assert result.effective == ["a"]


# --- route map ------------------------------------------------------------------------------

ROUTES = ScopeRouteMap.from_config(
    {
        "orders:read": ["GET /orders", "GET /orders/{id}"],
        "orders:write": ["POST,PUT /orders/{id}", "DELETE /orders/*/items/{item}"],
        "files:all": ["* /files/**"],
        "health": ["GET /"],
    }
)


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/orders", "orders:read"),
        ("get", "/orders", "orders:read"),
        ("GET", "/orders/", "orders:read"),
        ("GET", "/orders/42", "orders:read"),
        ("GET", "/orders/42/", "orders:read"),
        ("GET", "/orders/a%20b", "orders:read"),
        ("GET", "/orders?limit=5", "orders:read"),
        ("GET", "/orders/42?x=/../admin", "orders:read"),
        ("PUT", "/orders/42", "orders:write"),
        ("POST", "/orders/42", "orders:write"),
        ("DELETE", "/orders/7/items/3", "orders:write"),
        ("PATCH", "/files", "files:all"),
        ("GET", "/files/a/b/c.txt", "files:all"),
        ("GET", "/", "health"),
    ],
)
def test_allowed(method: str, path: str, scope: str) -> None:
    assert ROUTES.allowing_scope(method, path, ROUTES.scopes) == scope
    assert ROUTES.scopes_allowing(method, path) == [scope]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        # method mismatch
        ("POST", "/orders"),
        ("DELETE", "/orders/42"),
        ("HEAD", "/orders/42"),
        # no route at all
        ("GET", "/admin"),
        ("GET", "/orders/42/secret"),
        ("GET", "/ordersX"),
        ("GET", "/orders-archive/1"),
        ("GET", "/files-secret/x"),
        # dot segments, plain and encoded
        ("GET", "/orders/../admin"),
        ("GET", "/orders/./42"),
        ("GET", "/orders/%2e%2e/admin"),
        ("GET", "/orders/%2E%2E/admin"),
        ("GET", "/orders/.%2e/admin"),
        ("GET", "/files/../admin"),
        ("GET", "/files/a/%2e%2e/%2e%2e/admin"),
        ("GET", "/orders/..;/admin"),
        ("GET", "/files/..;jsessionid=1/admin"),
        # encoded slashes and backslashes
        ("GET", "/orders/1%2F..%2Fadmin"),
        ("GET", "/orders/1%2fx"),
        ("GET", "/orders/1%5C..%5Cadmin"),
        ("GET", "/orders/1%5cx"),
        ("GET", "/orders/1\\..\\admin"),
        ("GET", "/files/a%2Fb"),
        # double encoding, NUL, bad UTF-8, bad escapes
        ("GET", "/orders/%252e%252e"),
        ("GET", "/orders/1%00"),
        ("GET", "/orders/%ff"),
        ("GET", "/orders/%zz"),
        # double and leading slashes, no leading slash, fragments
        ("GET", "//orders"),
        ("GET", "/orders//42"),
        ("GET", "/orders/42//"),
        ("GET", "orders"),
        ("GET", ""),
        ("GET", "/orders#x"),
        ("GET", "https://shop.example/orders"),
    ],
)
def test_denied(method: str, path: str) -> None:
    assert ROUTES.allowing_scope(method, path, ROUTES.scopes) is None
    assert ROUTES.scopes_allowing(method, path) == []


def test_only_granted_scopes_count() -> None:
    assert ROUTES.allowing_scope("GET", "/orders/1", ["orders:write"]) is None
    assert ROUTES.allowing_scope("GET", "/orders/1", ["unknown", "orders:read"]) == "orders:read"
    assert ROUTES.allowing_scope("GET", "/orders/1", []) is None


def test_first_granted_scope_that_allows_wins() -> None:
    overlapping = ScopeRouteMap.from_config({"a": ["GET /x/**"], "b": ["GET /x/{id}"]})
    assert overlapping.allowing_scope("GET", "/x/1", ["b", "a"]) == "b"
    assert overlapping.scopes_allowing("GET", "/x/1") == ["a", "b"]


def test_double_star_matches_zero_or_more_segments() -> None:
    rule = RouteRule.parse(["GET"], "/files/**")
    assert rule.matches("GET", ("files",))
    assert rule.matches("GET", ("files", "a", "b"))
    assert not rule.matches("GET", ())
    assert not rule.matches("GET", ("other", "a"))


def test_single_star_matches_exactly_one_segment() -> None:
    rule = RouteRule.parse(["GET"], "/a/*/c")
    assert rule.matches("GET", ("a", "b", "c"))
    assert not rule.matches("GET", ("a", "c"))
    assert not rule.matches("GET", ("a", "b", "b", "c"))


def test_normalize_request_path() -> None:
    assert normalize_request_path("/") == ()
    assert normalize_request_path("/a/b%20c/") == ("a", "b c")
    assert normalize_request_path("/a?q=1") == ("a",)
    assert normalize_request_path("/a/../b") is None


@pytest.mark.parametrize(
    "config",
    [
        {"s": ["GET orders"]},
        {"s": ["/orders"]},
        {"s": ["GET /orders/**/x"]},
        {"s": ["GET /orders//x"]},
        {"s": ["GET /orders/../x"]},
        {"s": ["GET /orders?x=1"]},
        {"s": ["GET /a%2Fb"]},
        {"s": [" /orders"]},
        {"s": "GET /orders"},
    ],
)
def test_unsafe_or_malformed_patterns_are_refused(config: dict[str, list[str]]) -> None:
    with pytest.raises(ValueError):
        ScopeRouteMap.from_config(config)


def test_fuzzed_paths_never_raise_and_never_allow_dot_segments() -> None:
    rng = random.Random(3986)
    pieces = ["/", "//", ".", "..", "%2e", "%2E", "%2f", "%5c", "%00", "%ff", "%", "%2", ";", "?"]
    pieces += ["orders", "files", "42", "a", "é", "\\", "#", "%25"]
    for _ in range(5000):
        path = "".join(rng.choices(pieces, k=rng.randint(0, 8)))
        method = rng.choice(["GET", "get", "POST", "", "*"])
        scope = ROUTES.allowing_scope(method, path, ROUTES.scopes)
        if scope is not None:
            decoded = unquote(path.partition("?")[0])
            assert "/../" not in decoded + "/" and "/./" not in decoded + "/"
            assert "\\" not in decoded and "\x00" not in decoded


def test_remembered_decisions_answer_as_fresh_ones_and_stay_bounded() -> None:
    routes = ScopeRouteMap.from_config(
        {"orders:read": ["GET /orders", "GET /orders/{id}"], "orders:write": ["* /orders/**"]}
    )
    fresh = ScopeRouteMap.from_config(
        {"orders:read": ["GET /orders", "GET /orders/{id}"], "orders:write": ["* /orders/**"]}
    )
    calls = [
        ("GET", "/orders/1", ["orders:read"]),
        ("GET", "/orders/1", ["orders:write", "orders:read"]),
        ("GET", "/orders/1", ["profile"]),
        ("DELETE", "/orders/1", ["orders:read"]),
        ("DELETE", "/orders/1", ["orders:write"]),
        ("get", "/orders/%2e%2e/admin", ["orders:read", "orders:write"]),
        ("GET", "/orders/1", []),
    ]
    expected = ["orders:read", "orders:write", None, None, "orders:write", None, None]
    for _ in range(3):  # the second and third time from memory
        for (method, path, granted), answer in zip(calls, expected, strict=True):
            allowing = fresh.scopes_allowing(method, path)
            assert answer == next((s for s in granted if s in allowing), None)
            assert routes.allowing_scope(method, path, granted) == answer
    # A client sending endless distinct paths cannot grow the memory without bound.
    for i in range(20_000):
        routes.allowing_scope("GET", f"/orders/{i}", ["orders:read"])
    assert len(routes._allowing) <= 2048
    assert routes.allowing_scope("GET", "/orders/" + "x" * 300, ["orders:read"]) == "orders:read"
    assert all(len(path) <= 256 for _, path in routes._allowing)
