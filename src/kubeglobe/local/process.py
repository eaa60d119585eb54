"""Starting and stopping the environment's daemons, by PID and never by name.

A started daemon is recorded as a `ProcessRecord`: its PID plus the kernel's start time
of that PID, so a PID that was reused by some other program after a crash is never
mistaken for ours and never signalled. Daemons run in their own session with their
output in a log file, so they outlive the `kubeglobe` command that started them.
This module must never kill anything it cannot prove it started.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

SHIM_SOCKET_DIR = Path("/run/containerd/s")


def boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


class ProcessRecord(BaseModel):
    pid: int
    start_time: int
    argv: list[str]
    log: str
    boot_id: str = ""  # start times restart at boot: a record from an earlier boot is dead
    spec_hash: str = ""  # of the argv and config files it was started with


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def process_start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[19])


def _is_zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is None or fields[0] in ("Z", "X")


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def is_running(record: ProcessRecord) -> bool:
    """True while the recorded process (and not a later one with its PID) is alive."""
    _reap(record.pid)
    if record.boot_id and record.boot_id != boot_id():
        return False
    if process_start_time(record.pid) != record.start_time:
        return False
    return not _is_zombie(record.pid)


def start_daemon(
    *, argv: list[str], log: Path, netns: str | None = None, env: dict[str, str] | None = None
) -> ProcessRecord:
    """Start argv detached, in the network namespace `netns` if given."""
    if netns is not None:
        # nsenter, not `ip netns exec`: the latter remounts /sys and hides the cgroup
        # mounts, which kubelet needs. nsenter execs argv, so the PID stays the program's.
        argv = ["nsenter", f"--net=/var/run/netns/{netns}", "--", *argv]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} start: {argv!r}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            close_fds=True,
        )
    started = process_start_time(proc.pid)
    if started is None:
        raise RuntimeError(f"{argv[0]} exited at once; see {log}")
    return ProcessRecord(
        pid=proc.pid, start_time=started, argv=argv, log=str(log), boot_id=boot_id()
    )


def stop_process(record: ProcessRecord, *, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`; a no-op if the process is already gone."""
    if not is_running(record):
        return
    _signal(record.pid, signal.SIGTERM)
    if _wait_gone(record, timeout):
        return
    _signal(record.pid, signal.SIGKILL)
    _wait_gone(record, 5.0)


def kill_process(record: ProcessRecord) -> None:
    """SIGKILL at once: used to simulate a crash and to end helpers that ignore SIGTERM."""
    if is_running(record):
        _signal(record.pid, signal.SIGKILL)
        _wait_gone(record, 5.0)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _wait_gone(record: ProcessRecord, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(record):
            return True
        time.sleep(0.05)
    return not is_running(record)


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    cmdline: str
    argv: tuple[str, ...] = ()


def list_processes() -> list[ProcInfo]:
    found: list[ProcInfo] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        fields = _stat_fields(pid)
        if fields is None:
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue
        argv = tuple(a.decode(errors="replace") for a in raw.split(b"\0") if a)
        found.append(ProcInfo(pid=pid, ppid=int(fields[1]), cmdline=" ".join(argv), argv=argv))
    return found


def descendants(roots: set[int], procs: list[ProcInfo]) -> set[int]:
    """Every process below `roots` in the parent tree (roots included)."""
    children: dict[int, list[int]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p.pid)
    seen: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        todo.extend(children.get(pid, []))
    return seen


def _flag(argv: tuple[str, ...], name: str) -> str | None:
    for i, arg in enumerate(argv[:-1]):
        if arg in (f"-{name}", f"--{name}"):
            return argv[i + 1]
    return None


def shims_of(socket: str, procs: list[ProcInfo]) -> list[ProcInfo]:
    """The containerd shims serving the containerd at `socket` (by their exact argv)."""
    return [
        p for p in procs
        if p.argv and Path(p.argv[0]).name.startswith("containerd-shim")
        and _flag(p.argv, "address") == socket
    ]


def shim_socket(shim: ProcInfo) -> Path | None:
    """Where a runc v2 shim listens: /run/containerd/s/sha256(address/namespace/id)."""
    address, namespace, ident = (_flag(shim.argv, f) for f in ("address", "namespace", "id"))
    if address is None or namespace is None or ident is None:
        return None
    digest = hashlib.sha256(f"{address}/{namespace}/{ident}".encode()).hexdigest()
    return SHIM_SOCKET_DIR / digest


def kill_shims(socket: str) -> int:
    """SIGKILL the shims of the containerd at `socket` and every container below them.

    Used for what containerd started on our behalf: a shim names our containerd's socket
    (a path inside our state directory) after `-address`, so nothing of another
    environment matches. Their sockets, left in the shared shim directory, are removed.
    """
    procs = list_processes()
    me = os.getpid()
    shims = [p for p in shims_of(socket, procs) if p.pid != me]
    victims = descendants({p.pid for p in shims}, procs) - {me}
    for pid in victims:
        _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while victims and time.monotonic() < deadline:
        for pid in list(victims):
            _reap(pid)
            if _is_zombie(pid):
                victims.discard(pid)
        time.sleep(0.05)
    for shim in shims:
        path = shim_socket(shim)
        if path is not None:
            path.unlink(missing_ok=True)
    return len(shims)
