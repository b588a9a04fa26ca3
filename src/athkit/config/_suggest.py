"""Did-you-mean for unknown keys: the closest field name of the model the key sits in."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel


def _models_in(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """(model, keyed): the model an annotation holds, and whether it sits under dict keys or
    list indexes (the next path part is a key, not a field)."""
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            model, keyed = _models_in(arg)
            if model is not None:
                return model, keyed
        return None, False
    if origin in (dict, list):
        args = typing.get_args(annotation)
        model, _ = _models_in(args[-1]) if args else (None, False)
        return model, model is not None
    return None, False


def suggest_key(root: type[BaseModel], loc: tuple[str | int, ...] | list[str | int]) -> str | None:
    """The known key closest to the unknown key at ``loc`` (``None`` when nothing is close)."""
    model: type[BaseModel] | None = root
    keyed = False
    for part in loc[:-1]:
        if model is None:
            return None
        if keyed:
            keyed = False
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        model, keyed = _models_in(field.annotation)
    if model is None or keyed or not loc:
        return None
    names = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]).lower(), names, n=1, cutoff=0.6)
    return close[0] if close else None
