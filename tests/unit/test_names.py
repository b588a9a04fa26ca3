"""No two things in ``src/`` share a name: each public class and type alias is defined once, so
a name in a traceback, a log or a doc means one thing."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "athkit"


def _type_var(value: ast.expr) -> bool:
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id in {"TypeVar", "ParamSpec", "NewType"}
    )


def _defined_types(path: Path) -> set[str]:
    """Public classes and CamelCase aliases defined at the top of ``path``."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if (
                    isinstance(target, ast.Name)
                    and target.id[:1].isupper()
                    and not target.id.isupper()
                    and not _type_var(node.value)
                ):
                    names.add(target.id)
    return {n for n in names if not n.startswith("_")}


def test_each_class_and_type_alias_is_defined_once() -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for path in sorted(SRC.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for name in _defined_types(path):
            where[name].append(str(path.relative_to(SRC)))
    twice = {name: places for name, places in where.items() if len(places) > 1}
    assert not twice, f"defined in more than one module: {twice}"
