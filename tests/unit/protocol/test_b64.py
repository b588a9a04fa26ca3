"""Strict unpadded base64url (RFC 7515 §2)."""

import pytest

from athkit.protocol import b64url_decode, b64url_encode


@pytest.mark.parametrize("data", [b"", b"\x00", b"\xff\xfe", b"hello world", bytes(range(256))])
def test_roundtrip(data: bytes) -> None:
    encoded = b64url_encode(data)
    assert "=" not in encoded and "+" not in encoded and "/" not in encoded
    assert b64url_decode(encoded) == data


@pytest.mark.parametrize("text", ["a", "ab=", "ab==", "a+b/", "ab c", "ab\n", "é", "abcde"])
def test_refuses_anything_but_unpadded_base64url(text: str) -> None:
    with pytest.raises(ValueError):
        b64url_decode(text)
