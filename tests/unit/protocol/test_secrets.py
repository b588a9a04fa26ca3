"""Opaque secrets: generated, stored as hashes, compared in constant time."""

from athkit.protocol import generate_secret, hash_secret, secret_matches


def test_secrets_are_random_prefixed_and_hash_verifiable() -> None:
    secrets = {generate_secret("ath_at_") for _ in range(100)}
    assert len(secrets) == 100
    secret = secrets.pop()
    assert secret.startswith("ath_at_") and len(secret) >= 7 + 43
    stored = hash_secret(secret)
    assert secret not in stored
    assert secret_matches(secret, stored)
    assert not secret_matches(secret + "x", stored)
    assert not secret_matches(secrets.pop(), stored)
