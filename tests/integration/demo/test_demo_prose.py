"""``ath demo`` as a person reads it on an 80-column terminal: it opens with what ATH is, its
table adds the action refused under operator review and the token refused after revocation,
and no code or URL is split inside a word."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from urllib.parse import urlsplit

from athkit.protocol import ErrorCode


def test_demo_at_80_columns() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from athkit.cli import main; main()", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "80"},
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    opening = " ".join(line.strip("│ ") for line in lines[:6])
    assert "ATH, the Agent Trust Handshake, lets an AI agent act for a person" in opening
    table = out[out.index("What ATH decided in this run") :]
    cells = " ".join(
        cell.strip()
        for line in table.splitlines()
        if line.startswith("│")
        for cell in line.split("│")
    )
    for words in ("action under", "operator review", "after the", "user revoked it"):
        assert words in cells, words
    assert "(SCOPE_NOT_APPROVED)" in table and "(TOKEN_REVOKED)" in table
    codes = {c.value for c in ErrorCode}
    for token in re.findall(r"\b[A-Z]{2,}(?:_[A-Z]+)+_?\b|\b[A-Z]+_\b", out):
        assert token in codes, f"a code split or unknown: {token!r}"
    for url in re.findall(r"https?://[^\s│)'\"]+", out):
        parts = urlsplit(url.rstrip(".,"))
        assert parts.port is not None, url
        if "/.well-known/" in parts.path:
            assert parts.path.endswith(".json"), f"a URL split: {url!r}"
