"""Optional compiled build of the trading core, with mypyc, from the same sources.

    .venv/bin/python build_native.py            # compile in place (``make native``)
    .venv/bin/python build_native.py --clean    # remove the compiled modules again

The modules in ``NATIVE_MODULES`` are compiled into C extension modules written next to
their ``.py`` files in ``src/tradewind/core`` (``*.so`` is git-ignored). Python imports
an extension module in preference to the ``.py`` file of the same name, so once they
exist every user of ``tradewind.core`` gets the compiled core; after ``--clean`` the
pure-Python core is back, unchanged. ``tradewind.core.native.is_compiled()`` tells which
one is loaded.

Compiled (``tradewind.core.native.NATIVE_MODULES``): ``book``, ``symbols`` and ``engine``
(the order book, the markets and ``Core.apply``). Not compiled: ``commands`` and
``events`` (msgspec structs, already C), and the cold modules (``codec``,
``commandfile``, ``invariants``).

The build needs mypy (it ships mypyc; a test extra), setuptools, a C compiler and
Python's headers; the compiled modules need nothing but CPython and msgspec at run time.
mypyc type-checks the modules first (``[tool.mypy]`` of pyproject.toml), so a type error
stops the build. Its scratch files go to ``build/native``. Re-run it after any change
to a compiled module: a stale extension module would otherwise shadow the edited source
(``tests/unit/test_native.py`` fails on one).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SRC = ROOT / "src"
PACKAGE_DIR = SRC / "tradewind" / "core"
BUILD_DIR = ROOT / "build" / "native"
sys.path.insert(0, str(SRC))
from tradewind.core.native import NATIVE_MODULES  # noqa: E402 - the one list of them

GROUP = "tradewind.core._native"
"""The shared library that holds the compiled code; each compiled module also gets a
small extension module (a shim) of its own name that loads it."""


def _ext_suffix() -> str:
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    return str(suffix) if suffix else ".so"


def built_files() -> list[Path]:
    """Every compiled artefact in the package directory, whatever Python built it."""
    stems = (*NATIVE_MODULES, GROUP.rsplit(".", 1)[1] + "__mypyc")
    return sorted(
        p
        for p in PACKAGE_DIR.iterdir()
        if p.suffix in (".so", ".pyd") and p.name.split(".", 1)[0] in stems
    )


def clean() -> None:
    for p in built_files():
        p.unlink()
        print(f"removed {p.relative_to(ROOT)}")
    if BUILD_DIR.exists():
        shutil.rmtree(BUILD_DIR)
        print(f"removed {BUILD_DIR.relative_to(ROOT)}/")


def build(opt_level: str, verbose: bool) -> None:
    try:
        from mypyc.build import mypycify
        from setuptools import Distribution  # type: ignore[import-untyped]
    except ImportError as e:
        sys.exit(f"build_native: {e.name} is needed (`make install` installs it)")

    clean()
    os.chdir(ROOT)  # mypy reads [tool.mypy] from pyproject.toml; paths are relative to it
    paths = [f"src/tradewind/core/{m}.py" for m in NATIVE_MODULES]
    ext_modules = mypycify(
        paths,
        opt_level=opt_level,
        group_name=GROUP,
        target_dir=str(BUILD_DIR / "c"),
        verbose=verbose,
    )
    # A bare Distribution rather than setup(): setup() would also read pyproject.toml,
    # which describes the pure-Python package, not this build.
    dist = Distribution(
        {"name": "tradewind-native", "package_dir": {"": "src"}, "ext_modules": ext_modules}
    )
    dist.script_args = [
        *([] if verbose else ["--quiet"]),
        "build_ext",
        "--inplace",
        "--build-temp",
        str(BUILD_DIR / "temp"),
        "--build-lib",
        str(BUILD_DIR / "lib"),
    ]
    dist.parse_command_line()
    dist.run_commands()
    missing = [m for m in NATIVE_MODULES if not (PACKAGE_DIR / f"{m}{_ext_suffix()}").exists()]
    if missing:
        sys.exit(f"build_native: no extension module built for {', '.join(missing)}")
    for p in built_files():
        print(f"built {p.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clean", action="store_true", help="remove the compiled modules")
    parser.add_argument("--opt-level", default="3", help="C optimisation level (default 3)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    if args.clean:
        clean()
    else:
        build(args.opt_level, args.verbose)


if __name__ == "__main__":
    main()
