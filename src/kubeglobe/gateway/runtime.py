"""HAProxy's runtime API: read and replace a map, reload the configuration.

The worker's admin socket (`stats socket ... level admin`) serves maps and backends,
the master's (`-S`) reloads. Every command is one short connection: write the line,
half-close, read the answer to EOF.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

TIMEOUT = 5.0
_VERSION = re.compile(r"New version created: (\d+)")
_RELOADS = re.compile(r"master\s+(\d+)\s+\[failed: (\d+)\]")
UNIX_PATH_MAX = 97  # HAProxy's limit for a UNIX socket path (sun_path less its suffix)


class RuntimeApiError(RuntimeError):
    """HAProxy refused a command or could not be reached; the message says which."""


async def command(socket: Path, line: str) -> str:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(socket)),
                                                TIMEOUT)
    except (OSError, TimeoutError) as e:
        raise RuntimeApiError(f"cannot reach HAProxy's socket {socket}: {e}") from e
    try:
        writer.write(line.encode() + b"\n")
        await writer.drain()
        writer.write_eof()
        answer = await asyncio.wait_for(reader.read(), TIMEOUT)
    except (OSError, TimeoutError) as e:
        raise RuntimeApiError(f"HAProxy's socket {socket} failed during {line.split()[0]!r}: "
                              f"{e}") from e
    finally:
        writer.close()
    return answer.decode(errors="replace")


def map_text(entries: dict[str, str]) -> bytes:
    """A map's entries as HAProxy reads them, from a file or a command's payload."""
    return "".join(f"{k} {v}\n" for k, v in sorted(entries.items())).encode()


def parse_map(listing: str) -> dict[str, str]:
    """`show map` output (`<ref> <key> <value>` per line) as {key: value}."""
    entries = {}
    for row in listing.splitlines():
        parts = row.split(" ", 2)
        if len(parts) == 3 and parts[0].startswith("0x"):
            entries[parts[1]] = parts[2]
    return entries


@dataclass(frozen=True, kw_only=True)
class HAProxyRuntime:
    admin_socket: Path
    master_socket: Path

    async def show_map(self, map_file: Path) -> dict[str, str]:
        answer = await command(self.admin_socket, f"show map {map_file}")
        if answer.lstrip().lower().startswith(("unknown map", "unknown command")):
            raise RuntimeApiError(f"HAProxy has no map {map_file}: {answer.strip()}")
        return parse_map(answer)

    async def replace_map(self, map_file: Path, entries: dict[str, str]) -> None:
        """Swap the whole map at once (prepare, fill, commit): requests never see half."""
        answer = await command(self.admin_socket, f"prepare map {map_file}")
        found = _VERSION.search(answer)
        if found is None:
            raise RuntimeApiError(f"HAProxy would not prepare map {map_file}: {answer.strip()}")
        version = found.group(1)
        if entries:
            payload = map_text(entries).decode()
            answer = await command(self.admin_socket,
                                   f"add map @{version} {map_file} <<\n{payload}")
            if answer.strip():
                raise RuntimeApiError(f"HAProxy refused entries for {map_file}: "
                                      f"{answer.strip()[:200]}")
        answer = await command(self.admin_socket, f"commit map @{version} {map_file}")
        if answer.strip():
            raise RuntimeApiError(f"HAProxy would not commit map {map_file}: {answer.strip()}")

    async def backends(self) -> set[str]:
        answer = await command(self.admin_socket, "show backend")
        return {row.strip() for row in answer.splitlines()
                if row.strip() and not row.startswith("#")}

    async def server_connections(self) -> str:
        """`show servers conn`: each server's used and idle connections."""
        return await command(self.admin_socket, "show servers conn")

    async def reloads(self) -> tuple[int, int]:
        """(reloads done, reloads failed) as HAProxy's master counts them."""
        found = _RELOADS.search(await command(self.master_socket, "show proc"))
        if found is None:
            raise RuntimeApiError("HAProxy's master did not say how its reloads went")
        return int(found.group(1)), int(found.group(2))

    async def reload(self) -> None:
        """Ask the master to reload; RuntimeApiError if the new configuration failed."""
        done, failed = await self.reloads()
        await command(self.master_socket, "reload")
        for _ in range(50):  # bounded: 5 s for the new worker to start
            await asyncio.sleep(0.1)
            try:
                now_done, now_failed = await self.reloads()
            except RuntimeApiError:
                continue  # the master is busy starting the new worker
            if now_failed > failed:
                raise RuntimeApiError("HAProxy refused the new configuration; see its log")
            if now_done > done:
                return
        raise RuntimeApiError("HAProxy did not finish reloading within 5 s")
