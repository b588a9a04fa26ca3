"""A consent context whose signed claims hold a non-finite number is refused, not a crash."""

import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from athkit.protocol import ATHError, ErrorCode, b64url_encode, generate_private_key
from athkit.protocol._consent_context import verify_consent_context


@pytest.mark.parametrize("claim", ["exp", "iat"])
def test_infinite_time_claim_is_malformed(claim: str) -> None:
    key = generate_private_key()
    claims = {"iss": "c", "aud": "https://as.example", "exp": 2_000_000_000, "iat": 1}
    raw = json.dumps(claims).replace(str(claims[claim]), "1e400").encode()
    header = json.dumps({"alg": "ES256", "typ": "ath-consent+jwt"}).encode()
    signing_input = f"{b64url_encode(header)}.{b64url_encode(raw)}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    token = f"{signing_input}.{b64url_encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
    with pytest.raises(ATHError) as info:
        verify_consent_context(
            token,
            key.public_key(),
            client_id="c",
            audience="https://as.example",
            code_challenge="x",
            now=1,
        )
    assert info.value.code is ErrorCode.INVALID_REQUEST
    assert info.value.details["reason"] == "malformed"
