"""Each public package's ``__all__`` is exactly its public surface: every public name the package
imports is listed, every listed name exists, and nothing private or accidental leaks."""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

import athkit

# Optional extras: importable only with their dependencies (installed by the dev extra).
PACKAGES = sorted(
    info.name
    for info in pkgutil.walk_packages(athkit.__path__, "athkit.")
    if info.ispkg
    and not any(part.startswith("_") for part in info.name.split("."))
    and ".migrations" not in info.name
    and not info.name.endswith((".templates", ".static"))
)


def test_the_packages_are_found() -> None:
    assert {"athkit.protocol", "athkit.server", "athkit.gateway", "athkit.agent"} <= set(PACKAGES)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_exactly_the_public_surface(name: str) -> None:
    package = importlib.import_module(name)
    listed = getattr(package, "__all__", None)
    assert listed is not None, f"{name} has no __all__"
    assert len(listed) == len(set(listed)), f"{name}.__all__ lists a name twice"
    missing = [n for n in listed if not hasattr(package, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"
    public = {
        n
        for n, value in vars(package).items()
        if not n.startswith("_")
        and not isinstance(value, types.ModuleType)  # its own submodules, imported on the way
        and n != "annotations"  # from __future__
    }
    unlisted = sorted(public - set(listed))
    assert not unlisted, f"{name} exposes names missing from __all__: {unlisted}"
