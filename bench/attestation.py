"""Attestation verification rate: athkit against raw ES256, PyJWT and joserfc, in one run.

    .venv/bin/python bench/attestation.py [--rounds 7] [--iterations 3000]

Each round times every contender for the same number of verifications of the same token, taking
turns in chunks of 50 calls so that machine noise hits them alike; the figures printed are
medians over rounds (verifications per second of CPU time), and each ratio is the median of the
per-round ratios to raw. "raw" is the floor: only ``cryptography``'s ECDSA P-256 verify of the
signature, converted to DER outside the timed loop. Ours, PyJWT and joserfc all do the full job:
parse, verify, check exp/aud/iat.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt as pyjwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey

from athkit.protocol import (
    VerificationKey,
    b64url_decode,
    create_attestation,
    generate_private_key,
    verify_attestation,
)

AGENT_ID = "https://agent.example/.well-known/agent.json"
AUDIENCE = "https://shop.example"


@dataclass(frozen=True)
class Setup:
    """One token and every contender's prepared key material."""

    token: str
    public_key: ec.EllipticCurvePublicKey
    verification_key: VerificationKey
    jose_key: ECKey
    signing_input: bytes
    der_signature: bytes


def prepare() -> Setup:
    """A fresh key and attestation, prepared the way each contender would use them."""
    key = generate_private_key()
    token = create_attestation(key, agent_id=AGENT_ID, audience=AUDIENCE)
    header, payload, signature = token.split(".")
    raw = b64url_decode(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public_key = key.public_key()  # one key object for every contender
    return Setup(
        token=token,
        public_key=public_key,
        verification_key=VerificationKey(public_key),
        jose_key=ECKey.import_key(public_key),
        signing_input=f"{header}.{payload}".encode("ascii"),
        der_signature=der,
    )


def ours(setup: Setup) -> Callable[[], object]:
    """athkit's full verification with a prepared key, as the server uses it."""
    token, key = setup.token, setup.verification_key
    return lambda: verify_attestation(token, key, audience=AUDIENCE)


def raw(setup: Setup) -> Callable[[], object]:
    """Only the ECDSA verification: the floor no JWT verifier can beat."""
    verify, der, data = setup.public_key.verify, setup.der_signature, setup.signing_input
    algorithm = ec.ECDSA(hashes.SHA256())
    return lambda: verify(der, data, algorithm)


def pyjwt_decode(setup: Setup) -> Callable[[], object]:
    """PyJWT with the same checks (signature, exp, iat, aud)."""
    token, key = setup.token, setup.public_key
    options = {"require": ["exp", "iat", "aud", "jti"]}
    return lambda: pyjwt.decode(
        token, key, algorithms=["ES256"], audience=AUDIENCE, options=options
    )


def joserfc_decode(setup: Setup) -> Callable[[], object]:
    """joserfc with the same checks (signature, then a claims registry for exp, iat, aud)."""
    token, key = setup.token, setup.jose_key
    registry = jose_jwt.JWTClaimsRegistry(
        leeway=300, aud={"essential": True, "value": AUDIENCE}, jti={"essential": True}
    )

    def run() -> object:
        decoded = jose_jwt.decode(token, key, algorithms=["ES256"])
        registry.validate(decoded.claims)
        return decoded

    return run


CONTENDERS: dict[str, Callable[[Setup], Callable[[], object]]] = {
    "raw cryptography ES256": raw,
    "athkit verify_attestation": ours,
    "PyJWT jwt.decode": pyjwt_decode,
    "joserfc jwt.decode": joserfc_decode,
}


def elapsed(call: Callable[[], object], iterations: int) -> float:
    """CPU seconds this process spent on ``iterations`` calls of ``call``, with the GC paused.

    CPU time rather than wall time: on a shared machine, the moments this process waits while
    another one runs are not charged to whichever contender happened to be running.
    """
    gc.disable()
    try:
        start = time.process_time()
        for _ in range(iterations):
            call()
        return time.process_time() - start
    finally:
        gc.enable()


def measure(rounds: int, iterations: int, chunk: int = 50) -> dict[str, list[float]]:
    """Rates per contender, one per round.

    Within a round the contenders take turns in chunks of ``chunk`` calls, so a burst of load
    from elsewhere on the machine falls on all of them rather than on whichever ran then.
    """
    setup = prepare()
    calls = {name: factory(setup) for name, factory in CONTENDERS.items()}
    for call in calls.values():
        call()  # warm up, and fail loudly before timing if a contender is broken
    results: dict[str, list[float]] = {name: [] for name in calls}
    chunk = max(1, min(chunk, iterations))
    for _ in range(rounds):
        spent = dict.fromkeys(calls, 0.0)
        for index in range(max(1, iterations // chunk)):
            # Alternate the order so that no contender always runs right after another.
            names = list(calls) if index % 2 == 0 else list(reversed(calls))
            for name in names:
                spent[name] += elapsed(calls[name], chunk)
        for name in calls:
            results[name].append(max(1, iterations // chunk) * chunk / spent[name])
    return results


def report(results: dict[str, list[float]]) -> str:
    """The figures as printed: median rates, and ratios to raw as medians of per-round ratios."""
    raw_rates = results["raw cryptography ES256"]
    lines = []
    for name, rates in results.items():
        ratio = statistics.median(r / b for r, b in zip(rates, raw_rates, strict=True))
        lines.append(
            f"{name:28s} {statistics.median(rates):9.0f} verifications/s  {ratio:5.2f}x raw"
        )
    per_round = [
        r / b for r, b in zip(results["athkit verify_attestation"], raw_rates, strict=True)
    ]
    ours_ratio = statistics.median(per_round)
    verdict = "meets" if ours_ratio >= 0.85 else "MISSES"
    lines.append(
        f"ours / raw = {ours_ratio:.3f} ({verdict} the 0.85x target; "
        f"rounds ranged {min(per_round):.3f}-{max(per_round):.3f})"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--iterations", type=int, default=3000)
    args = parser.parse_args(argv)
    results = measure(args.rounds, args.iterations)
    print(f"{args.rounds} rounds x {args.iterations} verifications per contender")
    print(report(results))


if __name__ == "__main__":
    main()
