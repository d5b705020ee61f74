"""KYC documents on the local disk, outside anything the web server serves.

Invariants:
- files go under ``root`` (``DATA_DIR/kyc-documents`` by default: the data directory
  is never served; the web UI's static files live in the package), in a directory per
  user, under a random 32-hex-digit name plus the extension the service derived from
  the content, so a client chooses neither the path nor the name;
- directories are created 0700 and files 0600, written to a temporary name, fsynced,
  then renamed into place: a crash leaves no half-written document under a real name.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


class FileDocumentStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def save(self, user_id: int, data: bytes, extension: str) -> str:
        if not extension.isalnum() or isinstance(user_id, bool) or user_id < 0:
            raise ValueError("bad document extension or user id")
        directory = self.root / str(int(user_id))
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{secrets.token_hex(16)}.{extension}"
        temporary = directory / f".{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, directory / name)
        return f"{int(user_id)}/{name}"

    def path_of(self, location: str) -> Path:
        """The file of a stored location (for reviewers' tools), never outside ``root``."""
        path = (self.root / location).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError("location outside the document store")
        return path
