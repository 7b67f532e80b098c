"""Searching on a Ray cluster: checking --address before joining, storage several nodes share, node facts.

- `check_address`: a wrong --address fails within about 30 s with one line saying what
  failed (Ray's own connection loop retries for about 14 minutes). The port is probed over
  TCP, then a throwaway driver joins in a child process with bounded connection settings
  (not set in the driver itself: they also govern reconnecting during the run). Through the
  Ray client (ray://), a token the head refuses ends that child at the head's first answer:
  Ray's client would retry it for about 30 s as if the head were still starting.
- `storage_path` / `upload`: with --storage (a shared folder, or a URI such as
  s3://bucket/prefix that pyarrow's filesystems handle), Ray Tune writes its experiment
  folder (checkpoints, TensorBoard events) there from every node, and the driver copies
  its own files (run.json, study.db, the tables, summary.json, best_model/, report/) beside
  it at the end of each session, so the storage holds the whole run directory.
- `node_facts`: which LSTM implementation each node ran, for run.json.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

from runfiles.cli import UsageError
from runfiles.io import read_rows
from runfiles.layout import RunDir
from search.console import Progress

HOST_PORT = re.compile(r"^(?:ray://)?(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})$")
BOUNDED_CONNECT = {
    "RAY_gcs_server_port_wait_time_s": "1",
    "RAY_py_gcs_connect_timeout_s": "5",
    "RAY_gcs_rpc_server_connect_timeout_s": "2",
}
"""One connection attempt of about 10 s instead of Ray's 20 attempts of about 41 s."""
PROBE = """
import grpc, logging, os, ray, sys

class Refused(logging.Handler):
    def emit(self, record):
        error = sys.exc_info()[1]
        if isinstance(error, grpc.RpcError) and error.code() == grpc.StatusCode.UNAUTHENTICATED:
            print(f"Unauthenticated: {error.details()}", file=sys.stderr, flush=True)
            os._exit(1)

client_log = logging.getLogger("ray.util.client")
client_log.setLevel(logging.DEBUG)
client_log.propagate = False
client_log.addHandler(Refused())
ray.init(address=sys.argv[1], log_to_driver=False)
ray.shutdown()
"""
"""A throwaway driver that joins `address` (argv[1]) and leaves. Ray's client logs (at DEBUG)
each connection attempt the head refuses, while it handles the gRPC error before retrying: one
refused as UNAUTHENTICATED (a token the head does not accept) ends the probe there, so that
`_refusal` names the token at once instead of Ray retrying for about 30 s."""
PROBE_TIMEOUT_S = 25.0


def check_address(address: str | None) -> None:
    """Return once a Ray cluster accepted a driver at `address` (None or 'auto': nothing to check).

    Raises UsageError (one line: a malformed address, nothing listening, no Ray cluster
    answering, a rejected token) within about PROBE_TIMEOUT_S seconds.
    """
    if address in (None, "auto"):
        return
    match = HOST_PORT.match(address)
    if not match or not 0 < int(match["port"]) < 65536:
        raise UsageError(f"--address {address}: expected HOST:PORT (the head's port, 6379 by default), ray://HOST:10001 or auto")
    try:
        socket.create_connection((match["host"].strip("[]"), int(match["port"])), timeout=5).close()
    except OSError as error:
        raise UsageError(
            f"--address {address}: nothing accepts connections there ({error.strerror or error}); "
            "start the head with `ray start --head`, or give its address"
        ) from None
    try:
        done = subprocess.run(
            [sys.executable, "-c", PROBE, address],
            env={**os.environ, **BOUNDED_CONNECT},
            timeout=PROBE_TIMEOUT_S,
            capture_output=True,
            text=True,
        )
    except subprocess.TimeoutExpired:
        raise UsageError(
            f"--address {address}: no Ray cluster answered within {PROBE_TIMEOUT_S:g} s; "
            "give the head's Ray port (6379 by default) or ray://HOST:10001"
        ) from None
    if done.returncode != 0:
        raise UsageError(f"--address {address}: {_refusal(done.stderr)}")


def _refusal(stderr: str) -> str:
    if any(word in stderr for word in ("Unauthenticated", "InvalidAuthToken", "AuthenticationError", "Unauthorized")):
        return (
            "the cluster rejected our token; set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or ~/.ray/auth_token) "
            "to the cluster's token"
        )
    if "version mismatch" in stderr.lower():
        return "this machine's Ray or Python version differs from the cluster's; install the cluster's versions"
    last = [line for line in stderr.strip().splitlines() if line.strip()][-1:] or ["(no output)"]
    return f"could not join the Ray cluster: {last[0][:200]}"


# ---------------------------------------------------------------- storage


def storage_path(run_dir: RunDir, storage: str | None) -> str:
    """Where Ray Tune keeps the run's experiment folder: DIR itself, or STORAGE/<DIR's name>."""
    if storage is None:
        return str(run_dir.root.resolve())
    return f"{storage.rstrip('/')}/{run_dir.root.resolve().name}"


def upload(run_dir: RunDir, storage: str | None) -> None:
    """Copy the driver's own files of the run directory to the storage (Tune's are there already)."""
    if storage is None:
        return
    import pyarrow.fs

    target = storage_path(run_dir, storage)
    filesystem, root = pyarrow.fs.FileSystem.from_uri(target if "://" in target else os.path.abspath(target))
    filesystem.create_dir(root, recursive=True)
    for path in sorted(run_dir.root.iterdir()):
        if path.name == run_dir.tune.name or path.name.startswith("."):
            continue
        destination = f"{root}/{path.name}"
        if path.is_dir():
            filesystem.create_dir(destination, recursive=True)
        pyarrow.fs.copy_files(str(path.resolve()), destination, destination_filesystem=filesystem)


def node_facts(run_dir: RunDir) -> dict:
    """{node_id: {"hostname", "lstm"}} from the trial tables: which implementation each node ran."""
    nodes: dict = {}
    for row in read_rows(run_dir.epochs_csv):
        if row.get("node_id"):
            nodes.setdefault(row["node_id"], {"hostname": row.get("hostname", ""), "lstm": set()})["lstm"].add(
                row.get("lstm", "")
            )
    return {node: {"hostname": seen["hostname"], "lstm": sorted(seen["lstm"] - {""})} for node, seen in nodes.items()}


def wait_for_gpus(gpus: float, timeout_s: float, progress: Progress) -> dict:
    """The cluster's resources once it has `gpus` GPUs, asking the autoscaler for them first.

    A cluster whose GPU workers start at zero (cluster.yaml's min_workers: 0) has none when
    the search starts. Returns the resources as they are after timeout_s (the caller then
    says what is missing).
    """
    import math
    import time

    import ray
    from ray.autoscaler.sdk import request_resources

    resources = ray.cluster_resources()
    if gpus <= resources.get("GPU", 0) or timeout_s <= 0:
        return resources
    request_resources(bundles=[{"GPU": 1}] * math.ceil(gpus))
    progress.say(
        f"waiting up to {timeout_s / 60:g} min for the cluster's autoscaler to add GPUs ({resources.get('GPU', 0):g} of {gpus:g})"
    )
    deadline = time.time() + timeout_s
    while time.time() < deadline and ray.cluster_resources().get("GPU", 0) < gpus:
        time.sleep(10)
    return ray.cluster_resources()
