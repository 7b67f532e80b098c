"""k8s/rayjob.yaml says what docs/cluster.md relies on: a RayJob whose Ray cluster has a CPU head and
GPU workers, token authentication on every container, and a cluster deleted after the job."""

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).parents[1]
K8S = ROOT / "k8s"
TOKEN_SECRET = {"name": "bilstm-search-ray-token", "key": "auth_token"}


@pytest.fixture(scope="module")
def job() -> dict:
    (document,) = list(yaml.safe_load_all((K8S / "rayjob.yaml").read_text()))
    return document


def containers(job: dict) -> dict[str, dict]:
    """The first container of the head, each worker group and the submitter, by role."""
    spec = job["spec"]
    found = {"head": spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]}
    for group in spec["rayClusterSpec"]["workerGroupSpecs"]:
        found[f"worker:{group['groupName']}"] = group["template"]["spec"]["containers"][0]
    found["submitter"] = spec["submitterPodTemplate"]["spec"]["containers"][0]
    return found


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_is_a_rayjob_that_runs_the_search_and_then_deletes_its_cluster(job):
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[:3] == ["python", "-m", "search.run"]
    assert option(argv, "--address") == "auto"
    assert option(argv, "--storage").startswith("s3://")
    assert job["spec"]["shutdownAfterJobFinishes"] is True


def test_gpus_asked_for_equal_the_gpu_workers_and_the_head_has_none(job):
    cluster = job["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0"
    assert "nvidia.com/gpu" not in head["template"]["spec"]["containers"][0]["resources"]["limits"]
    gpus = 0
    for group in cluster["workerGroupSpecs"]:
        limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert int(limits["nvidia.com/gpu"]) >= 1
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        gpus += group["replicas"] * int(limits["nvidia.com/gpu"])
    assert float(option(shlex.split(job["spec"]["entrypoint"]), "--gpus")) == gpus


def test_every_container_uses_token_auth_from_the_secret(job):
    for role, container in containers(job).items():
        env = {e["name"]: e for e in container["env"]}
        assert env["RAY_AUTH_MODE"]["value"] == "token", role
        assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == TOKEN_SECRET, role
        assert "value" not in env["RAY_AUTH_TOKEN"], role  # the token is never in the manifest
    assert TOKEN_SECRET["name"] in (K8S / "rayjob.yaml").read_text().split("apiVersion")[0]  # how to create it


def test_one_image_whose_ray_is_the_clusters_and_one_we_support(job):
    images = {c["image"] for c in containers(job).values()}
    assert len(images) == 1
    base = re.search(r"^FROM rayproject/ray:(\S+)-py311-gpu$", (K8S / "Dockerfile").read_text(), re.M)
    assert base and base[1] == job["spec"]["rayClusterSpec"]["rayVersion"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (ray_requirement,) = [Requirement(r) for r in project["dependencies"] if Requirement(r).name == "ray"]
    assert ray_requirement.specifier.contains(base[1])
