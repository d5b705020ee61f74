"""The pure-Python trading core, loaded from the ``.py`` sources even when the compiled
build (``build_native.py``) has put extension modules next to them.

Python imports an extension module in preference to a ``.py`` file of the same name, so
``import tradewind.core.engine`` gives the compiled core once it is built. To compare the
two builds in one process, :func:`load_pure_engine` imports the compiled modules a second
time from their sources and then puts ``sys.modules`` (and the package's attributes)
back as they were: the rest of the process keeps the compiled core, the caller gets
private pure-Python copies. Both share ``commands`` and ``events``, which are never
compiled, so their events compare with ``==``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

import tradewind.core
from tradewind.core.native import NATIVE_MODULES

PACKAGE = "tradewind.core"


class _SourceOnly(importlib.abc.MetaPathFinder):
    """Finds the named modules of ``tradewind.core`` as ``.py`` files, nothing else."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname not in self.names:
            return None
        source = Path(tradewind.core.__path__[0]) / (fullname.rsplit(".", 1)[1] + ".py")
        return importlib.util.spec_from_file_location(fullname, source)


def load_pure_engine() -> ModuleType:
    """A private pure-Python ``tradewind.core.engine`` (with pure ``book`` and ``symbols``
    behind it), whatever build the process has imported."""
    names = {f"{PACKAGE}.{m}" for m in NATIVE_MODULES}
    saved_modules = {n: sys.modules.pop(n) for n in list(names) if n in sys.modules}
    package = sys.modules[PACKAGE]
    saved_attrs = {n: getattr(package, n.rsplit(".", 1)[1], None) for n in names}
    finder = _SourceOnly(names)
    sys.meta_path.insert(0, finder)
    try:
        engine = importlib.import_module(f"{PACKAGE}.engine")
    finally:
        sys.meta_path.remove(finder)
        for n in names:
            sys.modules.pop(n, None)
        sys.modules.update(saved_modules)
        for n, attr in saved_attrs.items():
            short = n.rsplit(".", 1)[1]
            if attr is None:
                if hasattr(package, short):
                    delattr(package, short)
            else:
                setattr(package, short, attr)
    if not engine.__file__ or not engine.__file__.endswith(".py"):
        raise RuntimeError(f"expected the pure-Python engine, got {engine.__file__}")
    return engine
