"""PKCE S256 (RFC 7636)."""

from athkit.protocol import (
    code_challenge_s256,
    generate_code_verifier,
    is_valid_code_verifier,
    verify_code_challenge,
)

# RFC 7636 appendix B (the code_verifier printed there, not a look-alike)
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_rfc7636_appendix_b_vector() -> None:
    assert code_challenge_s256(RFC_VERIFIER) == RFC_CHALLENGE
    assert verify_code_challenge(RFC_VERIFIER, RFC_CHALLENGE)


def test_wrong_verifier_or_challenge_fails() -> None:
    assert not verify_code_challenge(RFC_VERIFIER[:-1] + "t", RFC_CHALLENGE)
    assert not verify_code_challenge(RFC_VERIFIER, RFC_CHALLENGE[:-1] + "N")
    # "plain" is never accepted: the verifier itself is not a valid challenge.
    assert not verify_code_challenge(RFC_VERIFIER, RFC_VERIFIER)


def test_generated_verifiers_are_valid_and_distinct() -> None:
    verifiers = {generate_code_verifier() for _ in range(50)}
    assert len(verifiers) == 50
    assert all(len(v) == 43 and is_valid_code_verifier(v) for v in verifiers)
    assert len(generate_code_verifier(96)) == 128


def test_verifier_shape_rules() -> None:
    assert not is_valid_code_verifier("a" * 42)
    assert is_valid_code_verifier("a" * 43)
    assert is_valid_code_verifier("a" * 128)
    assert not is_valid_code_verifier("a" * 129)
    assert not is_valid_code_verifier("a" * 42 + "+")
    assert not is_valid_code_verifier("é" * 43)
    assert not verify_code_challenge("é" * 43, RFC_CHALLENGE)
    assert not verify_code_challenge("short", code_challenge_s256("short"))
