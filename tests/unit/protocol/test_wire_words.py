"""The protocol's paths and header names are said once, in ``athkit.protocol._wire``: code
elsewhere uses the constants (prose — docstrings, messages — may name them)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[3] / "src" / "athkit"
WIRE = SRC / "protocol" / "_wire.py"


def _docstrings(tree: ast.AST) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _is_wire_word(text: str) -> bool:
    """A path or header name as code uses it (prose, with its spaces, may name them)."""
    lower = text.lower()
    return lower.startswith(("/ath/", "/.well-known/ath", "x-ath-")) and not any(
        c.isspace() for c in text
    )


def test_paths_and_header_names_come_from_the_wire_module() -> None:
    spoken: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        if path == WIRE:
            continue
        tree = ast.parse(path.read_text())
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str | bytes)
                and id(node) not in skip
            ):
                text = node.value if isinstance(node.value, str) else node.value.decode("latin-1")
                if _is_wire_word(text):
                    spoken.append(f"{path.relative_to(SRC)}:{node.lineno}: {text!r}")
    assert not spoken, "say these with athkit.protocol's constants:\n" + "\n".join(spoken)
