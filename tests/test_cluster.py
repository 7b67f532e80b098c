"""The search on a real multi-node Ray cluster on this machine: token authentication, a Ray job
whose trials run on both nodes with the data through the object store only, a search through
the Ray client that loses a node mid-search, and addresses that do not answer or refuse our token.

    python -m pytest -q tests/test_cluster.py
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runfiles.io import read_json, read_rows
from runfiles.layout import RunDir, State
from search import run as search_run
from search.cluster import check_address

from conftest import SAMPLE, TINY
from localcluster import RAY, LocalCluster, token_env

REPO = Path(__file__).resolve().parents[1]
NODES = (
    "import json, os, ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
    "nodes = [{'id': n['NodeID'], 'resources': n['Resources']} for n in ray.nodes() if n['Alive']]; "
    "probe = ray.remote(lambda path: os.path.exists(path)).options(resources={'worker_node': 0.01}); "
    "print(json.dumps({'nodes': nodes, 'worker_node_sees': [ray.get(probe.remote(path)) for path in sys.argv[2:]]}))"
)
"""The live nodes, and whether a task on the worker node sees each path given after the address."""
JOINS = "import ray, sys; ray.init(address=sys.argv[2], log_to_driver=False); print(1)"
"""A driver that joins the address given after the head's (through the Ray client: ray://)."""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head (1 CPU) and a worker node (1 CPU) that cannot see the folder holding the data, once
    the head's Ray client server accepts a driver (its start is Ray's, not ours, to time)."""
    base = tmp_path_factory.mktemp("cluster")
    (base / "data").mkdir()
    archive = Path(shutil.copy(SAMPLE, base / "data" / "sample.tar.gz"))
    local = LocalCluster(token_env(base))
    try:
        local.start_head("--num-cpus=1")
        local.add_node("--num-cpus=1", '--resources={"worker_node": 1}', hide=archive.parent)
        _python(local, JOINS, local.client_address)
        yield local, archive
    finally:
        local.stop()


def _python(cluster: LocalCluster, code: str, *args: str) -> object:
    done = subprocess.run(
        [sys.executable, "-c", code, cluster.address, *args], env=cluster.env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _complete(out: Path) -> None:
    files = RunDir(out)
    for path in (
        files.run_json,
        files.study_db,
        files.trials_csv,
        files.epochs_csv,
        files.summary_json,
        files.best_model / "model.keras",
        files.report / "index.html",
    ):
        assert path.exists(), path


def test_a_search_submitted_as_a_ray_job_uses_both_nodes_and_no_worker_reads_the_data(cluster, tmp_path):
    local, archive = cluster
    out = tmp_path / "run"
    # Both trials start at once, one on each node (1 CPU each); Tune gives a trial another's actor only where
    # that one ends before the trial's own actor is up (in three runs here they started 0.7 to 2.8 s apart, a trial took 8-11 s).
    search = ["--address", "auto", "--data", str(archive), "--trials", "2", "--max-epochs", "1", "--out", str(out), *TINY]
    done = subprocess.run(
        [
            RAY,
            "job",
            "submit",
            "--address",
            local.dashboard,
            "--working-dir",
            str(REPO),
            "--",
            "python",
            "-m",
            "search.run",
            *search,
        ],
        cwd=REPO,
        env=local.env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "succeeded" in done.stdout + done.stderr
    _complete(out)
    rows = read_rows(RunDir(out).trials_csv)
    assert {row["state"] for row in rows} <= {State.COMPLETED, State.STOPPED_EARLY}
    cluster_facts = _python(local, NODES, str(archive))
    nodes = {node["id"] for node in cluster_facts["nodes"]}
    assert len(nodes) == 2 and {row["node_id"] for row in rows} == nodes
    facts = read_json(RunDir(out).run_json)
    assert set(facts["nodes"]) == nodes and all(node["lstm"] == ["fused"] for node in facts["nodes"].values())
    assert facts["resources"]["cpus"] == 2 and facts["resources"]["concurrency"] == 2
    assert cluster_facts["worker_node_sees"] == [False]  # the worker node's trial got the data from the object store


def test_a_search_through_the_ray_client_goes_on_when_a_node_is_lost(cluster, tmp_path, monkeypatch):
    local, archive = cluster
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.setenv(name, local.env[name])
    check_address(local.address)  # a head's Ray port: a throwaway driver joins with our token
    doomed = local.add_node("--num-cpus=1", '--resources={"doomed": 1}')
    doomed_id = next(node["id"] for node in _python(local, NODES)["nodes"] if "doomed" in node["resources"])
    out = tmp_path / "run"
    pause = {"trial": "*", "epoch": 3, "fault": "pause", "seconds": 15, "once": True}  # a window to lose the node in
    env = {"BILSTM_FAULTS": json.dumps([pause]), "BILSTM_FAULTS_STATE": str(tmp_path)}
    args = [
        "--address",
        local.client_address,
        "--data",
        str(archive),
        "--trials",
        "3",
        "--max-epochs",
        "3",
        "--grace-period",
        "3",
        "--out",
        str(out),
        *TINY,
    ]
    driver = subprocess.Popen(
        [sys.executable, "-m", "search.run", *args],
        cwd=REPO,
        env={**local.env, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    victim, killed_at = _kill_after_second_epoch(doomed, doomed_id, out, timeout_s=600)
    _, stderr = driver.communicate(timeout=900)
    assert driver.returncode == 0, stderr[-3000:]
    rows = read_rows(RunDir(out).trials_csv)
    assert [r["number"] for r in rows] == ["0", "1", "2"] and all(r["state"] == State.COMPLETED for r in rows)
    epochs = [(e["trial_id"], int(e["epoch"])) for e in read_rows(RunDir(out).epochs_csv)]
    assert len(epochs) == len(set(epochs)) == 9  # every epoch of every trial once: nothing trained twice
    moved = [e for e in read_rows(RunDir(out).epochs_csv) if e["trial_id"] == victim]
    assert [int(e["epoch"]) for e in moved] == [1, 2, 3]  # continued from its latest checkpoint, not restarted
    assert {e["node_id"] for e in moved[:2]} == {doomed_id} and doomed_id not in {e["node_id"] for e in moved[2:]}
    resumed_at = float(moved[2]["time"]) - float(moved[2]["trial_time_s"])
    print(
        f"node {doomed_id[:8]} killed at {killed_at:.1f}; {victim} resumed on node {moved[2]['node_id'][:8]} "
        f"{resumed_at - killed_at:.1f} s later, epoch 3 reported {float(moved[2]['time']) - killed_at:.1f} s after the kill"
    )
    _complete(out)
    timeline = (RunDir(out).report / "index.html").read_text().split('<section id="timeline">')[1]
    assert f"({victim}) moved from" in timeline and f"node {moved[2]['node_id'][:8]}" in timeline


def _kill_after_second_epoch(node, node_id: str, out: Path, timeout_s: float) -> tuple[str, float]:
    """SIGKILL `node` once a trial on it has reported epoch 2 (its checkpoint exists); (trial id, when)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        for row in read_rows(RunDir(out).epochs_csv):
            if row["node_id"] == node_id and row["epoch"] == "2":
                node.kill()
                return row["trial_id"], time.time()
        time.sleep(0.5)
    raise AssertionError("no trial reached its second epoch on the node to lose")


@pytest.mark.parametrize("token", ["0" * 32, None])
def test_a_token_the_head_refuses_through_the_ray_client_is_named_in_one_line(cluster, tmp_path, capsys, monkeypatch, token):
    local, archive = cluster
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    if token:  # a token of another cluster; None: no token sent (RAY_AUTH_MODE unset)
        monkeypatch.setenv("RAY_AUTH_MODE", "token")
        monkeypatch.setenv("RAY_AUTH_TOKEN", token)
    address = local.client_address
    code = search_run.main(["--address", address, "--data", str(archive), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith(f"error: --address {address}: ")
    assert "rejected our token" in err and "RAY_AUTH_TOKEN" in err and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "address, says",
    [
        ("127.0.0.1:1", "nothing accepts connections there"),
        ("ray://127.0.0.1:1", "nothing accepts connections there"),
        ("not-an-address", "expected HOST:PORT"),
        ("127.0.0.1:99999", "expected HOST:PORT"),
        ("CLOSED", "nothing accepts connections there"),
    ],
)
def test_an_address_that_does_not_answer_fails_fast_in_one_line(tmp_path, capsys, address, says):
    with socket.socket() as closed:  # bound, never listening
        closed.bind(("127.0.0.1", 0))
        address = address.replace("CLOSED", f"127.0.0.1:{closed.getsockname()[1]}")
        started = time.time()
        code = search_run.main(["--address", address, "--data", str(SAMPLE), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and time.time() - started < 30
    assert len(err.splitlines()) == 1 and err.startswith(f"error: --address {address}: ") and says in err
    assert not (tmp_path / "run").exists()


def test_a_port_that_answers_but_is_no_ray_cluster_fails_within_30_s(tmp_path, capsys):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"127.0.0.1:{server.getsockname()[1]}"
        started = time.time()
        code = search_run.main(["--address", address, "--data", str(SAMPLE), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and time.time() - started < 35 and len(err.splitlines()) == 1
    assert err.startswith(f"error: --address {address}: ")


def test_the_cluster_config_asks_every_node_to_build_the_kernel():
    import yaml

    config = yaml.safe_load((REPO / "cluster.yaml").read_text())
    assert any("python -m models.kernels" in command for command in config["setup_commands"])
    assert os.path.exists(REPO / "models" / "kernels" / "__main__.py")
