"""Writing files that others read while we write: atomically, private by default."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, content: bytes, mode: int = 0o600) -> None:
    """Readers see the old file or the new one, never half; `mode` from the start. The
    file being written is hidden (a dot-file), so a reader of the whole directory, such
    as a kubelet's static pod directory, skips it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(content)
    os.replace(tmp, path)
