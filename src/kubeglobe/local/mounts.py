"""Finding and undoing the mounts that kubelet and containerd made under a directory.

Kubelet bind-mounts its root directory and mounts pod volumes; containerd mounts
container root filesystems, sandbox /dev/shm and (with `netns_mounts_under_state_dir`)
pod network namespaces. All of them live under the environment's state directory, so
`unmount_below` can remove exactly ours, deepest first.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def _unescape(field: str) -> str:
    # /proc/self/mountinfo escapes space, tab, newline and backslash as octal.
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def mounts_below(root: Path) -> list[Path]:
    """Mount points strictly below `root`, deepest (and latest) first."""
    prefix = str(root.resolve())
    found: list[Path] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = _unescape(line.split()[4])
        if point.startswith(prefix + "/"):
            found.append(Path(point))
    # Later mounts may sit on earlier ones at the same point: undo in reverse order.
    found.reverse()
    found.sort(key=lambda p: len(p.parts), reverse=True)
    return found


def unmount_below(root: Path) -> list[Path]:
    """Unmount everything under root; returns what could not be unmounted."""
    if not root.exists():
        return []
    for _ in range(5):
        points = mounts_below(root)
        if not points:
            return []
        for point in points:
            done = subprocess.run(["umount", str(point)], capture_output=True)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", str(point)], capture_output=True)
    return mounts_below(root)
