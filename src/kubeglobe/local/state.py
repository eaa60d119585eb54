"""What an environment remembers between commands: its slot, ports and processes.

`state.json` in the state directory records the settings the environment was created
with and a `ProcessRecord` per running daemon; it is rewritten atomically after every
change, so a crash in the middle of `up` leaves a record of everything already started.
`environment_lock` makes `up`/`down` of one state directory run one at a time; slot
claims (one file per slot under /run/kubeglobe/slots) keep two environments of the
same machine from taking the same bridge, addresses and ports.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, Field

from kubeglobe.local.process import ProcessRecord

SLOT_DIR = Path(os.environ.get("KUBEGLOBE_SLOT_DIR", "/run/kubeglobe/slots"))


class EnvironmentConflict(RuntimeError):
    pass


# The environment's shape changes with this number: 2 is global on three control-plane
# node hosts, 3 its nodes pulling from the platform registry. A state of another layout
# is stopped with `down` and started anew.
LAYOUT = 3


class EnvironmentState(BaseModel):
    slot: int
    port_base: int
    workload_clusters: int
    global_workers: int = 1
    workload_nodes: int = 1
    layout: int = 1  # what a state written before layouts were numbered had
    processes: dict[str, ProcessRecord] = Field(default_factory=dict)


def state_file(state_dir: Path) -> Path:
    return state_dir / "state.json"


def load_state(state_dir: Path) -> EnvironmentState | None:
    path = state_file(state_dir)
    if not path.exists():
        return None
    try:
        return EnvironmentState.model_validate_json(path.read_text())
    except ValueError as e:
        raise EnvironmentConflict(
            f"{path} is not a KubeGlobe environment state ({e}); "
            "choose another --state-dir or remove that file"
        ) from e


def save_state(state_dir: Path, state: EnvironmentState) -> None:
    path = state_file(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(state.model_dump_json(indent=2))
    tmp.replace(path)


@contextmanager
def environment_lock(state_dir: Path) -> Iterator[None]:
    """An exclusive lock on a state directory for the length of one command."""
    path = state_dir / ".lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise EnvironmentConflict(
            f"another kubeglobe command is working on {path.parent}; "
            "wait for it to finish or use another --state-dir"
        ) from None
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _claim_path(slot: int) -> Path:
    return SLOT_DIR / str(slot)


def slot_owner(slot: int) -> Path | None:
    """The state directory that holds `slot`, if that directory still has its state."""
    try:
        owner = Path(_claim_path(slot).read_text().strip())
    except FileNotFoundError:
        return None
    return owner if state_file(owner).exists() else None


def claimed_state_dirs() -> list[Path]:
    """The state directories of every environment on this machine that holds a slot."""
    if not SLOT_DIR.is_dir():
        return []
    found = []
    for claim in SLOT_DIR.iterdir():
        if claim.name.isdigit():
            owner = slot_owner(int(claim.name))
            if owner is not None:
                found.append(owner)
    return found


def check_slot(slot: int, state_dir: Path) -> None:
    """Raise if another environment holds `slot`."""
    owner = slot_owner(slot)
    if owner is not None and owner.resolve() != state_dir.resolve():
        raise EnvironmentConflict(
            f"slot {slot} (bridge kgbr{slot}, 10.250.{slot}.0/24) belongs to the environment "
            f"in {owner}; pass another --slot or stop that one with "
            f"`kubeglobe local down --state-dir {owner}`"
        )


def claim_slot(slot: int, state_dir: Path, state: EnvironmentState) -> None:
    """Take `slot` and record the environment's state, atomically across environments.

    A claim counts only while its directory holds a state file, so both are written
    under one machine-wide lock: two `up`s racing for a slot get one winner and one
    clear error, never a shared slot.
    """
    SLOT_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(SLOT_DIR / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        check_slot(slot, state_dir)
        _claim_path(slot).write_text(str(state_dir.resolve()) + "\n")
        save_state(state_dir, state)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def release_slot(slot: int, state_dir: Path) -> None:
    path = _claim_path(slot)
    try:
        if Path(path.read_text().strip()).resolve() == state_dir.resolve():
            path.unlink()
    except FileNotFoundError:
        pass
