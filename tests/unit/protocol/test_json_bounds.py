"""The bounded JSON parser: every hostile shape is a JSONRejected naming its bound, never another
exception, and honest JSON parses exactly as json.loads would."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from athkit.protocol import JSONLimits, JSONRejected, loads_bounded

HONEST = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**15), 10**15)
    | st.floats(allow_nan=False, allow_infinity=False, width=64)
    | st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
    ),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(
            st.text(
                st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=30,
)


@given(HONEST)
def test_honest_json_parses_as_json_loads_does(value: Any) -> None:
    raw = json.dumps(value).encode("utf-8")
    assert loads_bounded(raw) == json.loads(raw)


@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode("utf-8", "replace")))
def test_any_bytes_parse_or_are_rejected(raw: bytes) -> None:
    try:
        loads_bounded(raw)
    except JSONRejected as exc:
        assert exc.reason and exc.message


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "too_large"),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "too_deep"),
        (b"[" * 33 + b"]" * 33, "too_deep"),
        (b"[" + b"1," * 1024 + b"1]", "too_many_items"),
        (b'{"a": "' + b"x" * 16_385 + b'"}', "string_too_long"),
        (b'{"a": 1' + b"0" * 64 + b"}", "number_too_long"),
        (b'{"a": 1e999}', "number_out_of_range"),
        (b'{"a": NaN}', "not_json"),
        (b'{"a": -Infinity}', "not_json"),
        (b'{"a": "\\u0000"}', "bad_character"),
        (b'{"a": "\\ud800"}', "bad_character"),
        (b'{"\\udfff": 1}', "bad_character"),
        (b'{"a": 1, "a": 2}', "duplicate_key"),
        ('{"a": 1}'.encode("utf-16"), "encoding"),
        (b'{"a": "\xe9"}', "encoding"),
        (b'\xef\xbb\xbf{"a": 1}', "encoding"),
        (b'{"a": 1', "malformed"),
        (b"", "malformed"),
    ],
)
def test_hostile_json_is_rejected_with_its_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(JSONRejected) as caught:
        loads_bounded(raw)
    assert caught.value.reason == reason


def test_limits_are_configurable() -> None:
    small = JSONLimits(max_bytes=10, max_depth=2)
    with pytest.raises(JSONRejected, match="larger than 10 bytes"):
        loads_bounded(b'{"a": "0123456789"}', small)
    with pytest.raises(JSONRejected, match="deeper than 2"):
        loads_bounded(b"[[[]]]", small)
    assert loads_bounded(b"[[1]]", small) == [[1]]


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 65_000,
        b'"' + b'\\"' * 32_000,
        b'{"a":' * 13_000,
        b"[" + b"1," * 32_000 + b"1]",
    ],
)
def test_worst_inputs_of_the_size_limit_are_cheap(raw: bytes) -> None:
    """A 64 KiB body of the worst shapes costs milliseconds, not seconds (a generous bound)."""
    started = time.process_time()
    with pytest.raises(JSONRejected):
        loads_bounded(raw)
    assert time.process_time() - started < 1.0
