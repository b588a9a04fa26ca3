"""Bounded JSON: the one parser for JSON that a peer chooses (request bodies, identity documents,
provider answers).

Python's ``json`` accepts more than RFC 8259 and more than a server can afford: ``NaN`` and
``Infinity``, UTF-16/32 bodies, numbers of thousands of digits, lone surrogates and NUL in strings
(which a database or an encoder later trips over), duplicate keys (ambiguous: two parsers may
read two different messages), and nesting deep enough to exhaust the stack. :func:`loads_bounded`
refuses each of these with :class:`JSONRejected`, whose ``reason`` says which bound was hit, at a
cost bounded by the size of the input:

* size — ``max_bytes`` (checked first; the caller usually stops reading earlier);
* encoding — strict UTF-8, no byte-order mark;
* depth — ``max_depth`` nested arrays/objects;
* width — ``max_items`` members in one array or object;
* strings — ``max_string`` characters, no NUL, no lone surrogate (keys included);
* numbers — ``max_number`` characters, finite, no ``NaN``/``Infinity`` literals;
* keys — unique within an object.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, NoReturn

__all__ = ["JSONLimits", "JSONRejected", "check_bounded", "loads_bounded"]


class JSONRejected(ValueError):
    """The input is not JSON this server accepts. ``reason`` names the bound."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class JSONLimits:
    """Bounds for one kind of JSON input. Generous for any honest peer."""

    max_bytes: int = 64 * 1024
    max_depth: int = 32
    max_items: int = 1024
    max_string: int = 16 * 1024
    max_number: int = 64


DEFAULT_LIMITS = JSONLimits()

# NUL and UTF-16 surrogates (which only a lone "\udXXX" escape can put into a parsed str).
_BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")


def _fail(reason: str, message: str) -> NoReturn:
    raise JSONRejected(reason, message)


def _decoder(limits: JSONLimits) -> json.JSONDecoder:
    def parse_int(text: str) -> int:
        if len(text) > limits.max_number:
            _fail("number_too_long", f"a number is longer than {limits.max_number} characters")
        return int(text)

    def parse_float(text: str) -> float:
        if len(text) > limits.max_number:
            _fail("number_too_long", f"a number is longer than {limits.max_number} characters")
        value = float(text)
        if not math.isfinite(value):
            _fail("number_out_of_range", "a number is too large to represent")
        return value

    def parse_constant(name: str) -> NoReturn:
        _fail("not_json", f"{name} is not JSON")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(items)
        if len(result) != len(items):
            _fail("duplicate_key", "an object has the same key twice")
        return result

    return json.JSONDecoder(
        parse_int=parse_int,
        parse_float=parse_float,
        parse_constant=parse_constant,
        object_pairs_hook=pairs,
    )


_DECODERS: dict[JSONLimits, json.JSONDecoder] = {}


def loads_bounded(raw: bytes | str, limits: JSONLimits = DEFAULT_LIMITS) -> Any:
    """Parse ``raw`` as RFC 8259 JSON within ``limits``, or raise :class:`JSONRejected`."""
    if len(raw) > limits.max_bytes:
        _fail("too_large", f"the JSON is larger than {limits.max_bytes} bytes")
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            _fail("encoding", "the JSON is not UTF-8")
    else:
        text = raw
    if text.startswith("\ufeff"):
        _fail("encoding", "the JSON starts with a byte-order mark")
    decoder = _DECODERS.get(limits)
    if decoder is None:
        decoder = _DECODERS.setdefault(limits, _decoder(limits))
    try:
        value = decoder.decode(text)
    except JSONRejected:
        raise
    except RecursionError:
        # The C scanner guards its recursion; deeper than the interpreter allows is too deep.
        _fail("too_deep", f"the JSON nests deeper than {limits.max_depth} levels")
    except ValueError as exc:
        _fail("malformed", f"not valid JSON: {exc}")
    check_bounded(value, limits)
    return value


def check_bounded(value: Any, limits: JSONLimits = DEFAULT_LIMITS) -> None:
    """Walk parsed data without recursion, enforcing the depth, width and string bounds of
    ``limits`` (for data that did not come through :func:`loads_bounded`, e.g. a form)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_string(item, limits)
        elif isinstance(item, dict | list):
            if depth > limits.max_depth:
                _fail("too_deep", f"the JSON nests deeper than {limits.max_depth} levels")
            if len(item) > limits.max_items:
                _fail("too_many_items", f"a JSON array or object has over {limits.max_items} items")
            if isinstance(item, dict):
                for key, member in item.items():
                    _check_string(key, limits)
                    stack.append((member, depth + 1))
            else:
                stack.extend((member, depth + 1) for member in item)


def _check_string(text: str, limits: JSONLimits) -> None:
    if len(text) > limits.max_string:
        _fail("string_too_long", f"a string is longer than {limits.max_string} characters")
    if _BAD_CHARACTER.search(text) is not None:
        _fail("bad_character", "a string holds NUL or a lone UTF-16 surrogate")
