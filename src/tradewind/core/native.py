"""Which build of the trading core is loaded: the pure-Python sources, or the optional
compiled build that ``build_native.py`` (``make native``) makes from the same sources
with mypyc.

The compiled build puts extension modules next to the ``.py`` files of
``NATIVE_MODULES``; Python then imports those instead. Both builds give the same events
and the same state for the same commands (``tests/unit/test_native.py``).
"""

from __future__ import annotations

import importlib
from importlib.machinery import EXTENSION_SUFFIXES

NATIVE_MODULES: tuple[str, ...] = ("book", "symbols", "engine")
"""The modules of ``tradewind.core`` that the compiled build compiles, in no order."""


def _loaded_from_extension(module: str) -> bool:
    path = getattr(importlib.import_module(f"tradewind.core.{module}"), "__file__", None)
    return bool(path) and str(path).endswith(tuple(EXTENSION_SUFFIXES))


def is_compiled() -> bool:
    """True when ``tradewind.core.engine`` (so ``Core.apply``) is the compiled build."""
    return _loaded_from_extension("engine")


def compiled_modules() -> list[str]:
    """The modules of ``NATIVE_MODULES`` loaded from an extension module (all of them or
    none, unless a build went wrong)."""
    return [m for m in NATIVE_MODULES if _loaded_from_extension(m)]


def build_name() -> str:
    """``"mypyc"`` or ``"pure"``, for reports and benchmark results."""
    return "mypyc" if is_compiled() else "pure"
