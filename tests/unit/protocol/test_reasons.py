"""Every ``details.reason`` the code raises is in the one table (``athkit.protocol.REASONS``),
and the README lists the whole table."""

from __future__ import annotations

import re
from pathlib import Path

from athkit.protocol import REASONS, is_known_reason

ROOT = Path(__file__).resolve().parents[3]
# reason="x", "reason": "x", and the verifier's and fetcher's _fail("x", ...) / _error("x", ...).
LITERAL = re.compile(
    r'(?:reason=f?|"reason": f?|_fail\(f?|_error\(f?)"([a-z][a-z0-9_]*(?:\{[^}"]*\}[a-z0-9_]*)?)"'
)


def _reasons_in_source() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted((ROOT / "src" / "athkit").rglob("*.py")):
        for match in LITERAL.finditer(path.read_text()):
            found.setdefault(match.group(1), str(path.relative_to(ROOT)))
    return found


def test_every_reason_in_the_code_is_in_the_table() -> None:
    found = _reasons_in_source()
    assert len(found) > 60  # the scan still sees the code
    unknown = {
        reason: where
        for reason, where in found.items()
        if not is_known_reason(re.sub(r"\{[^}]*\}", "x", reason))
    }
    assert not unknown, f"add these to athkit/protocol/_reasons.py: {unknown}"


def test_families_and_unknown_words() -> None:
    assert is_known_reason("agent_suspended") and is_known_reason("missing_exp")
    assert not is_known_reason("agent_") and not is_known_reason("made_up")


def test_the_readme_lists_every_reason() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [reason for reason in REASONS if f"| `{reason}` |" not in readme]
    assert not missing, f"README's reason table lacks {missing}"
