"""No traffic beyond loopback: run a command under strace and name every non-loopback destination.

`python test/netcheck.py -- CMD ARGS…` runs CMD under ``strace -f`` (Debian's strace) tracing the
syscalls that choose a destination (connect, sendto, sendmsg, sendmmsg) and exits 1 naming each
AF_INET / AF_INET6 address that is not loopback (127.0.0.0/8, ::1, or the unspecified address, which
Linux routes to this host), with its strace line. AF_UNIX and AF_NETLINK are local and fine.
"""

from __future__ import annotations

import argparse
import ipaddress
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

TRACED = "connect,sendto,sendmsg,sendmmsg"
_IPV4 = re.compile(r'sa_family=AF_INET, sin_port=htons\((\d+)\), sin_addr=inet_addr\("([^"]+)"\)')
_IPV6 = re.compile(r'sa_family=AF_INET6, sin6_port=htons\((\d+)\).*?inet_pton\(AF_INET6, "([^"]+)"')
_SYSCALL = re.compile(r"^(?:\[pid\s+)?(\d+)\]?\s+(\w+)\(")


@dataclass(frozen=True)
class Destination:
    """One destination a traced syscall named."""

    syscall: str
    family: str
    address: str
    port: int
    line: str

    def __str__(self) -> str:
        return f"{self.syscall}() to {self.address} port {self.port} ({self.family}): {self.line.strip()}"


def is_local(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def destinations(strace_text: str) -> list[Destination]:
    """Every AF_INET/AF_INET6 destination in strace output (``-f`` lines, unfinished calls included)."""
    out = []
    for line in strace_text.splitlines():
        m = _SYSCALL.match(line)
        syscall = m.group(2) if m else "?"
        for family, pattern in (("AF_INET", _IPV4), ("AF_INET6", _IPV6)):
            for port, addr in pattern.findall(line):
                out.append(Destination(syscall, family, addr, int(port), line))
    return out


def non_loopback(strace_text: str) -> list[Destination]:
    return [d for d in destinations(strace_text) if not is_local(d.address)]


@dataclass(frozen=True)
class TracedRun:
    returncode: int
    stdout: str
    stderr: str
    trace: str

    @property
    def offending(self) -> list[Destination]:
        return non_loopback(self.trace)


def strace_path() -> str | None:
    return shutil.which("strace")


def run_traced(cmd: Sequence[str], *, timeout_s: float, cwd: str | pathlib.Path | None = None,
               env: Mapping[str, str] | None = None) -> TracedRun:
    """Run ``cmd`` under ``strace -f -e trace=TRACED`` and return its output and the trace."""
    strace = strace_path()
    if strace is None:
        raise FileNotFoundError("strace is not installed (apt-get install strace; scripts/bootstrap.sh does as root)")
    with tempfile.TemporaryDirectory(prefix="netcheck-") as tmp:
        trace = pathlib.Path(tmp) / "trace.txt"
        # --seccomp-bpf: only the traced syscalls stop the process, so the graph runs at nearly full speed
        args = [strace, "-f", "--seccomp-bpf", "-qq", "-s", "0", "-e", f"trace={TRACED}", "-o", str(trace), *cmd]
        proc = subprocess.run(args, cwd=cwd, env=dict(env) if env is not None else None, capture_output=True,
                              text=True, timeout=timeout_s, check=False)
        return TracedRun(proc.returncode, proc.stdout, proc.stderr, trace.read_text(errors="replace"))


def report(run: TracedRun) -> str:
    bad = run.offending
    if not bad:
        return f"no destination beyond loopback ({len(destinations(run.trace))} loopback destinations traced)"
    return f"{len(bad)} syscalls to a non-loopback address:\n" + "\n".join(f"  {d}" for d in bad)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("cmd", nargs=argparse.REMAINDER, help="-- command and its arguments")
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("no command given")
    run = run_traced(cmd, timeout_s=args.timeout)
    print(report(run))
    return 1 if run.offending else 0


if __name__ == "__main__":
    sys.exit(main())
