"""A SoftHSM2 token in a temp dir for the signer's tests (see tests/integration/hsm/).

``SOFTHSM2_CONF`` points at the temp dir's config before the PKCS#11 library is loaded
(SoftHSM2 reads it once per process), so the system's tokens are never touched.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tradewind.adapters.hsm.pkcs11_custody import Pkcs11Custody

LIBRARY = "/usr/lib/softhsm/libsofthsm2.so"


@dataclass(frozen=True)
class SoftToken:
    library: str
    label: str
    pin: str
    conf: Path

    def open(self) -> Pkcs11Custody:
        return Pkcs11Custody(self.library, self.label, self.pin)


def softhsm_missing() -> bool:
    return not (Path(LIBRARY).exists() and shutil.which("softhsm2-util"))


def init_token(root: Path, label: str = "tradewind-test", pin: str = "12345678") -> SoftToken:
    """Write ``root/softhsm2.conf`` and initialise a token under ``root/tokens``; the
    caller sets ``SOFTHSM2_CONF`` to ``token.conf`` before opening it."""
    (root / "tokens").mkdir(parents=True, exist_ok=True)
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n")
    subprocess.run(
        [
            *("softhsm2-util", "--init-token", "--free", "--label", label),
            *("--so-pin", "87654321", "--pin", pin),
        ],
        check=True,
        capture_output=True,
        env={"SOFTHSM2_CONF": str(conf), "PATH": "/usr/bin:/bin"},
    )
    return SoftToken(LIBRARY, label, pin, conf)
