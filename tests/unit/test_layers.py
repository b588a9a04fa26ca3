"""Imports flow one way (DESIGN.md "Layers"), and the README's architecture tree names only what
exists and every package there is."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "athkit"

# What each package may import from athkit (besides itself and the top-level version).
ALLOWED = {
    "protocol": set(),
    "storage": {"protocol"},
    "pages": {"protocol"},
    "config": set(),
    "testing": {"protocol"},
    "agent": {"protocol", "pages"},
    "server": {"protocol", "storage", "pages"},
    "oauthserver": {"protocol", "storage", "pages", "config"},
    "console": {"protocol", "storage", "pages", "server"},
    "gateway": {"protocol", "storage", "pages", "config", "server", "console"},
    "integrations": {"protocol", "pages", "server", "agent"},
    "conformance": {"protocol", "agent", "testing", "pages"},
    "demo": {
        "protocol",
        "storage",
        "pages",
        "config",
        "server",
        "console",
        "gateway",
        "agent",
        "oauthserver",
        "integrations",
        "testing",
    },
}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found.update(n.split(".")[1] for n in names if n.startswith("athkit."))
    return found


def test_imports_flow_one_way() -> None:
    against: list[str] = []
    for path in SRC.rglob("*.py"):
        package = path.relative_to(SRC).parts[0]
        if package not in ALLOWED:
            continue
        for target in _imports(path) - {package} - ALLOWED[package]:
            against.append(f"{path.relative_to(ROOT)} imports athkit.{target}")
    assert not against, "imports against the layering:\n" + "\n".join(sorted(against))


def test_every_package_has_a_layer() -> None:
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").exists()}
    assert packages - {"cli"} == set(ALLOWED)


def test_the_readme_tree_matches_the_code() -> None:
    readme = (ROOT / "README.md").read_text()
    tree = readme.split("## Architecture", 1)[1].split("```", 2)[1]
    named = re.findall(r"([a-z_]+(?:/|\.py))\s", tree)
    packages = [n.rstrip("/") for n in named if n.endswith("/") and n != "athkit/"]
    modules = [n for n in named if n.endswith(".py")]
    assert set(packages) == {p.name for p in SRC.iterdir() if (p / "__init__.py").exists()}
    missing = [m for m in modules if not (SRC / "server" / m).exists()]
    assert not missing, f"the README's tree names modules that do not exist: {missing}"
