"""Whether the ports the stack is about to listen on are free, and who holds one that is not.

A service's health check cannot tell its own process from another that already answers on the same port (a second
stack with another state directory, a leftover process): `stack up` checks the ports first and refuses.
"""

from __future__ import annotations

import errno
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PortUse:
    port: int
    what: str              # e.g. "LW_KAFKA_PORT (the Kafka broker)"
    pid: int | None = None
    cmdline: str = ""
    state_dir: str = ""    # the other Lightwire stack's state directory, when the holder is one

    def describe(self) -> str:
        who = "another process"
        if self.pid is not None:
            cmd = self.cmdline if len(self.cmdline) <= 160 else self.cmdline[:157] + "..."
            who = f"pid {self.pid} ({cmd})"
        if self.state_dir:
            who += f", a Lightwire stack with state directory {self.state_dir}"
        return f"port {self.port}, {self.what}, is in use by {who}"


class PortsInUse(RuntimeError):
    def __init__(self, uses: list[PortUse], state_dir: Path):
        self.uses = uses
        lines = [f"{len(uses)} port(s) this stack needs are held by processes it did not start "
                 f"(its state directory is {state_dir}):"]
        lines += [f"  - {u.describe()}" for u in uses]
        others = sorted({u.state_dir for u in uses if u.state_dir})
        fixes = [f"`LW_STATE_DIR={d} lightwire stack down` stops that stack" for d in others]
        fixes.append("or stop the process holding the port")
        fixes.append("or give this stack free ports: " + ", ".join(sorted({u.what.split(" ", 1)[0].split("+")[0] for u in uses})))
        lines.append("Nothing was started. " + "; ".join(fixes) + ".")
        super().__init__("\n".join(lines))


def port_free(port: int) -> bool:
    """Whether a server could listen on `port` now: bind the wildcard address as servers do (SO_REUSEADDR, so a
    connection in TIME_WAIT does not count); on Linux that fails while anything listens on the port at any address."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            # local_address is HEXIP:HEXPORT; state 0A is LISTEN; the inode is the tenth column.
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def _holder(port: int) -> int | None:
    """The pid listening on `port`, when /proc lets us see it (processes of other users may stay hidden)."""
    wanted = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not wanted:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                try:
                    if os.readlink(fd) in wanted:
                        return int(proc.name)
                except OSError:
                    continue
        except OSError:
            continue
    return None


def _lightwire_state_dir(pid: int, cmdline: str) -> str:
    """The state directory of the Lightwire stack `pid` belongs to, if it is one: a Kafka node names its config file
    (<state>/kafka/server.properties, <state>/kafka-<n>/server.properties for node n), a service has LW_STATE_DIR in
    its environment (as the stack sets it)."""
    for arg in cmdline.split():
        if re.search(r"/kafka(-\d+)?/server\.properties$", arg):
            return str(Path(arg).parent.parent)
    if "lightwire.tools.cli serve" in cmdline:
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            return ""
        for entry in env:
            if entry.startswith(b"LW_STATE_DIR="):
                return entry.split(b"=", 1)[1].decode(errors="replace")
    return ""


def port_use(port: int, what: str) -> PortUse | None:
    """None when `port` is free; else who holds it, as far as we can tell."""
    if port_free(port):
        return None
    pid = _holder(port)
    cmdline = ""
    if pid is not None:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            pass
    return PortUse(port, what, pid, cmdline, _lightwire_state_dir(pid, cmdline) if pid is not None else "")


def check_ports_free(wanted: dict[int, str], state_dir: Path) -> None:
    """Raise PortsInUse naming every port of `wanted` (port -> what needs it) that something already holds."""
    uses = [use for port, what in sorted(wanted.items()) if (use := port_use(port, what)) is not None]
    if uses:
        raise PortsInUse(uses, state_dir.resolve())
