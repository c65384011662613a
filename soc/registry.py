"""One helper for every registry of named units (sources, parsers, sinks, analyst providers).

A registry maps the short name a configuration uses (``type = "file"``,
``chain = ["local"]``) to ``"module:Name[:Name…]"``; the module is imported
only when the name is used, so importing a stage's package stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def resolve(registry: Mapping[str, str], name: str, what: str) -> list[Any]:
    """The objects registered under ``name``, in the order the entry names them.

    Raises ``KeyError`` with a message naming ``what`` and the known names.
    """
    try:
        spec = registry[name]
    except KeyError:
        known = ", ".join(sorted(registry))
        raise KeyError(f"unknown {what} {name!r} (known: {known})") from None
    module_name, *attributes = spec.split(":")
    module = importlib.import_module(module_name)
    return [getattr(module, attribute) for attribute in attributes]


def lazy_attributes(package: str, modules: Mapping[str, str]) -> Callable[[str], Any]:
    """A package's module ``__getattr__`` (PEP 562): each name of ``modules`` is
    imported from the module it maps to on first use, so importing the package stays
    cheap. ``__getattr__ = lazy_attributes(__name__, {"Name": "pkg.module"})``."""

    def __getattr__(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__


__all__ = ["lazy_attributes", "resolve"]
