"""Shared pytest set-up: makes ``tests.support`` importable from every test directory
(the test directories are not packages, so pytest puts only their own folder on
``sys.path``)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
