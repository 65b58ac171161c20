"""Separate "machines" on one box: network namespaces on a private bridge.

    with Hosts(3) as hosts:          # dts-h1 .. dts-h3 on bridge dtsbr0 (10.213.7.1/24)
        redis = NetnsRedis(log_dir); redis.start()
        plane = NetnsControlPlane(redis.port, data_dir, log_dir); plane.start()
        agent = NetnsAgent(hosts[0], plane.server, data_dir, log_dir, name="a1")
        agent.start()                # `ip netns exec dts-h1 python -m desktop_agent.worker ...`
        hosts[0].link_down()         # host 1 cut off from everything
        hosts[0].link_up()

Layout: a bridge `dtsbr0` holding 10.213.7.1/24 in the root namespace; host N is the
namespace `dts-hN`, joined to the bridge by a veth pair (`dtsv-hN` on the bridge, `eth0`
inside with 10.213.7.(10+N)/24, `lo` up). Traffic only flows between the root namespace
and these hosts: no route out, no forwarding, no other interface touched.

Only one `Hosts` exists on the machine at a time: an exclusive lock (released by the kernel
even when its holder is killed) serialises runs, and whoever holds it first removes what a
killed run left behind (its namespaces, veths, bridge, and the processes still inside the
namespaces), so setup is idempotent and teardown thorough.

Agents reach the engine through the Docker unix socket, which a network namespace does
not cut off; containers run with `--network none` anyway.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from tests.support.processes import AgentProcess, ControlPlane, RedisServer, wait_for

BRIDGE = "dtsbr0"
GATEWAY = "10.213.7.1"
PREFIX_LEN = 24
NETNS_PREFIX = "dts-h"
VETH_PREFIX = "dtsv-h"
LOCK_PATH = Path("/run/dts-netns-hosts.lock")
NETNS_DIR = Path("/run/netns")

_NETNS_NAME = re.compile(rf"^{re.escape(NETNS_PREFIX)}\d+$")
_VETH_NAME = re.compile(rf"^{re.escape(VETH_PREFIX)}\d+$")


class NetnsUnavailable(RuntimeError):
    """`ip netns` (or a bridge) cannot be set up here: no iproute2, no CAP_NET_ADMIN, ..."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `ip ARGS`; raises NetnsUnavailable with ip's own message when `check` fails."""
    try:
        done = subprocess.run(
            ["ip", *args], capture_output=True, text=True, check=False, timeout=30
        )
    except FileNotFoundError as exc:
        raise NetnsUnavailable("iproute2 (`ip`) is not installed") from exc
    if check and done.returncode != 0:
        raise NetnsUnavailable(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")
    return done


class Host:
    """One network namespace standing for one machine."""

    def __init__(self, index: int) -> None:
        if not 1 <= index <= 200:
            raise ValueError(f"host index {index} out of range 1..200")
        self.index = index
        self.name = f"{NETNS_PREFIX}{index}"
        self.veth = f"{VETH_PREFIX}{index}"
        self.address = f"10.213.7.{10 + index}"

    def __repr__(self) -> str:
        return f"Host({self.name}, {self.address})"

    def exec_args(self, args: Sequence[str]) -> list[str]:
        """`args` run inside this host (`ip netns exec` execs them: same pid)."""
        return ["ip", "netns", "exec", self.name, *args]

    def link_down(self) -> None:
        """Cut this host off: its cable (the bridge side of its veth) is pulled."""
        ip("link", "set", self.veth, "down")

    def link_up(self) -> None:
        ip("link", "set", self.veth, "up")

    @property
    def link_is_up(self) -> bool:
        return "UP" in _flags(ip("-br", "link", "show", self.veth).stdout)

    def contains(self, pid: int) -> bool:
        """True when process `pid` runs in this host's network namespace."""
        try:
            return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(NETNS_DIR / self.name).st_ino
        except FileNotFoundError:
            return False

    def pids(self) -> list[int]:
        done = ip("netns", "pids", self.name, check=False)
        return [int(p) for p in done.stdout.split()] if done.returncode == 0 else []

    def _create(self) -> None:
        ip("netns", "add", self.name)
        ip("link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.name)
        ip("link", "set", self.veth, "master", BRIDGE)
        ip("link", "set", self.veth, "up")
        ip("-n", self.name, "addr", "add", f"{self.address}/{PREFIX_LEN}", "dev", "eth0")
        ip("-n", self.name, "link", "set", "eth0", "up")
        ip("-n", self.name, "link", "set", "lo", "up")


class Hosts:
    """`count` hosts on the bridge for the duration of a `with` block."""

    def __init__(self, count: int, lock_timeout: float = 600.0) -> None:
        if count < 1:
            raise ValueError("at least one host")
        self.hosts = [Host(i) for i in range(1, count + 1)]
        self.lock_timeout = lock_timeout
        self._lock: IO[bytes] | None = None

    def __enter__(self) -> Hosts:
        self._lock = _acquire_lock(self.lock_timeout)
        try:
            cleanup()
            ip("link", "add", BRIDGE, "type", "bridge")
            ip("addr", "add", f"{GATEWAY}/{PREFIX_LEN}", "dev", BRIDGE)
            ip("link", "set", BRIDGE, "up")
            for host in self.hosts:
                host._create()
            self._check_reachable()
        except BaseException:
            self._teardown()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._teardown()

    def __iter__(self) -> Iterator[Host]:
        return iter(self.hosts)

    def __len__(self) -> int:
        return len(self.hosts)

    def __getitem__(self, index: int) -> Host:
        return self.hosts[index]

    def _teardown(self) -> None:
        try:
            cleanup()
        finally:
            if self._lock is not None:
                self._lock.close()  # releases the flock
                self._lock = None

    def _check_reachable(self) -> None:
        """Each host opens a TCP connection to the gateway (catches a firewall early)."""
        with socket.socket() as listener:
            listener.bind((GATEWAY, 0))
            listener.listen(len(self.hosts))
            port = listener.getsockname()[1]
            probe = f"import socket; socket.create_connection(({GATEWAY!r}, {port}), 5).close()"
            for host in self.hosts:
                done = subprocess.run(
                    host.exec_args([sys.executable, "-c", probe]),
                    capture_output=True,
                    text=True,
                    check=False,
                    timeout=30,
                )
                if done.returncode != 0:
                    raise NetnsUnavailable(
                        f"{host.name} cannot reach {GATEWAY}:{port}: {done.stderr.strip()}"
                    )


def cleanup() -> None:
    """Remove every dts-hN namespace (killing what still runs inside), dtsv-hN veth and
    the bridge. Only call it holding the lock: it removes a live run's hosts too."""
    names = ip("netns", "list", check=False).stdout.split()
    leftovers = [n for n in names if _NETNS_NAME.match(n)]
    for name in leftovers:
        _kill_inside(name)
        ip("netns", "del", name, check=False)
    for line in ip("-br", "link", "show", check=False).stdout.splitlines():
        link = line.split()[0].split("@")[0] if line.split() else ""
        if _VETH_NAME.match(link):
            ip("link", "del", link, check=False)
    if ip("link", "show", BRIDGE, check=False).returncode == 0:
        ip("link", "del", BRIDGE)


def _kill_inside(netns: str) -> None:
    """SIGKILL processes a killed run left in one of our namespaces, by pid."""
    pids = ip("netns", "pids", netns, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    if pids:
        print(f"netns: killed {len(pids)} leftover process(es) in {netns}", file=sys.stderr)
        wait_for(
            lambda: not ip("netns", "pids", netns, check=False).stdout.split(),
            10,
            f"leftover processes in {netns} to exit",
        )


def _acquire_lock(timeout: float) -> IO[bytes]:
    try:
        handle = LOCK_PATH.open("ab")
    except OSError as exc:
        raise NetnsUnavailable(f"cannot open {LOCK_PATH}: {exc}") from exc
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() > deadline:
                handle.close()
                raise NetnsUnavailable(
                    f"another run holds {LOCK_PATH} (its hosts are in use) for over {timeout}s"
                ) from None
            time.sleep(0.5)


def _flags(brief: str) -> set[str]:
    """`ip -br link` flags (`<BROADCAST,UP,LOWER_UP>`) as a set."""
    match = re.search(r"<([^>]*)>", brief)
    return set(match.group(1).split(",")) if match else set()


# ---------------------------------------------------------------- processes on the hosts


class NetnsRedis(RedisServer):
    """redis-server reachable from the hosts (gateway address) and from the root namespace."""

    def __init__(self, log_dir: Path) -> None:
        super().__init__(log_dir)
        self.args = [
            "redis-server",
            *("--bind", GATEWAY, "127.0.0.1"),
            *("--port", str(self.port)),
            *("--save", ""),
            *("--appendonly", "no"),
            *("--protected-mode", "no"),
        ]


class NetnsControlPlane(ControlPlane):
    """The control plane on the gateway address, its broker there too, so the heartbeat
    reply sends agents on the hosts to redis://10.213.7.1:PORT."""

    def __init__(self, redis_port: int, data_dir: Path, log_dir: Path, **extra_env: str) -> None:
        super().__init__(
            redis_port,
            data_dir,
            log_dir,
            **{"API_HOST": GATEWAY, "REDIS_HOST": GATEWAY, **extra_env},
        )

    @property
    def url(self) -> str:
        return f"http://{GATEWAY}:{self.port}"

    @property
    def server(self) -> str:
        """What an agent passes to --server."""
        return f"{GATEWAY}:{self.port}"


class NetnsAgent(AgentProcess):
    """An agent on `host` (None: the root namespace, as a baseline) talking to `server`."""

    def __init__(
        self,
        host: Host | None,
        server: str,
        data_dir: Path,
        log_dir: Path,
        name: str = "agent",
        workers: int = 2,
        extra_args: list[str] | None = None,
    ) -> None:
        super().__init__(0, data_dir, log_dir, name, workers, extra_args)
        self.host = host
        self.data_dir = data_dir
        self.args[self.args.index("--server") + 1] = server
        if host is not None:
            self.args = host.exec_args(self.args)

    @property
    def spooled(self) -> int:
        """Outcomes written to the agent's spool and not yet delivered."""
        return sum(1 for _ in (self.data_dir / "spool").glob("*.json"))

    def ready(self) -> bool:
        """The embedded Celery worker is consuming (it logs `... ready.`)."""
        if not self.alive:
            raise AssertionError(f"agent {self.name} exited:\n{self.log_tail()}")
        return " ready." in self.log_tail(100_000)
