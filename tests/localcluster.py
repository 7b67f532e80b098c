"""Real Ray nodes on this machine for the cluster tests: `ray start --block`, each in its own session.

Each node gets its own temp dir, so the tests never touch another Ray on the machine, and
stops by its own process group (never `ray stop`, which kills every Ray process here). A
node may be started with a folder hidden from it (an empty tmpfs mounted over it in a
mount namespace of its own), to prove that its processes never read that folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test process dies, even by SIGKILL."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Node:
    process: subprocess.Popen
    log: Path
    temp_dir: Path

    def kill(self) -> None:
        """SIGKILL every process of the node at once (a machine lost): its raylet and workers
        run in sessions of their own, so they are found by the node's temp dir in their command line."""
        import psutil

        _signal_group(self.process.pid, signal.SIGKILL)
        for process in psutil.process_iter(["cmdline"]):
            if any(str(self.temp_dir) in part for part in process.info["cmdline"] or ()):
                with contextlib.suppress(psutil.Error):
                    process.kill()
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # `ray start --block` shuts its node down on SIGTERM
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        _signal_group(self.process.pid, signal.SIGKILL)  # whatever is left of the node


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


@dataclass
class LocalCluster:
    """A token-authenticated head on 127.0.0.1 and the worker nodes added to it."""

    env: dict
    port: int = field(default_factory=free_port)
    dashboard_port: int = field(default_factory=free_port)
    client_port: int = field(default_factory=free_port)
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rc", dir="/tmp")))  # socket paths stay short
    nodes: list = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def client_address(self) -> str:
        return f"ray://127.0.0.1:{self.client_port}"

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def start_head(self, *extra: str) -> Node:
        return self._start(
            [
                "--head",
                f"--port={self.port}",
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={self.dashboard_port}",
                f"--ray-client-server-port={self.client_port}",
                f"--dashboard-agent-listen-port={free_port()}",
                *extra,
            ]
        )

    def add_node(self, *extra: str, hide: Path | None = None) -> Node:
        return self._start([f"--address={self.address}", f"--dashboard-agent-listen-port={free_port()}", *extra], hide)

    def _start(self, args: list[str], hide: Path | None = None, timeout_s: float = 90) -> Node:
        index = len(self.nodes)
        log = self.base / f"node{index}.log"
        command = [
            RAY,
            "start",
            "--block",
            f"--temp-dir={self.base / f'n{index}'}",
            "--disable-usage-stats",
            "--object-store-memory=200000000",
            *args,
        ]
        if hide is not None:  # the node's processes see an empty folder there
            command = [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                f"mount -t tmpfs none {shlex.quote(str(hide))} && exec {shlex.join(command)}",
            ]
        with log.open("w") as out:
            process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True, preexec_fn=_die_with_parent
            )
        node = Node(process, log, self.base / f"n{index}")
        self.nodes.append(node)
        deadline = time.time() + timeout_s
        while time.time() < deadline and process.poll() is None:
            if "Ray runtime started" in log.read_text():
                return node
            time.sleep(0.2)
        raise RuntimeError(f"ray start failed (exit {process.poll()}):\n{log.read_text()[-2000:]}")

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        self.nodes.clear()


def token_env(folder: Path) -> dict:
    """The environment of the cluster's nodes and clients: a fresh token, RAY_AUTH_MODE=token."""
    subprocess.run(
        [RAY, "get-auth-token", "--generate"], env={**os.environ, "HOME": str(folder)}, check=True, capture_output=True
    )
    token = folder / ".ray" / "auth_token"
    token.chmod(0o600)
    path = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    return {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
        "RAY_USAGE_STATS_ENABLED": "0",
        # The head's Ray client server forks a server per client from a multithreaded gRPC process;
        # with gRPC's fork handlers on, about one fork in 20 dies before it runs (Ray issue #63202).
        # gRPC's setting for a fork followed by exec (grpc/grpc doc/fork_support.md), as cluster.yaml's head.
        "GRPC_ENABLE_FORK_SUPPORT": "false",
        "PATH": path,
    }
