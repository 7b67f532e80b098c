"""cluster.yaml passes Ray's own validation and says what docs/cluster.md relies on; the security group
script opens SSH to the given range only (the AWS CLI is replaced by a recorder)."""

import json
import os
import re
import shlex
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).parents[1]
CLUSTER_YAML = ROOT / "cluster.yaml"
SECURITY_GROUP_SCRIPT = ROOT / "cluster-security-group.sh"


@pytest.fixture(scope="module")
def config() -> dict:
    """cluster.yaml as `ray up` sees it: merged with Ray's AWS defaults, then validated."""
    prepared = prepare_config(yaml.safe_load(CLUSTER_YAML.read_text()))
    validate_config(prepared)
    return prepared


def node_types(config: dict) -> tuple[dict, dict]:
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    (worker,) = [t for name, t in types.items() if name != config["head_node_type"]]
    return head, worker


def test_head_has_no_gpu_and_gpu_workers_scale_from_zero(config):
    head, worker = node_types(config)
    assert head["resources"].get("GPU", 0) == 0 and head["resources"]["CPU"] >= 1
    assert worker["resources"]["GPU"] == 1
    assert worker["min_workers"] == 0 and 1 <= worker["max_workers"] <= 8
    assert config["max_workers"] == worker["max_workers"]


def test_every_node_installs_the_gpu_extra_then_builds_the_kernel(config):
    for commands in (config["head_setup_commands"], config["worker_setup_commands"]):
        install = next(i for i, c in enumerate(commands) if re.search(r"pip install .*-e '\.\[gpu\]'", c))
        build = next(i for i, c in enumerate(commands) if "python -m models.kernels" in c)
        assert install < build
        assert "'ray[default]'" in commands[install]  # the dashboard and the job server


def test_ray_starts_with_token_auth_and_the_token_reaches_every_node(config):
    starts = [c for c in config["head_start_ray_commands"] + config["worker_start_ray_commands"] if "ray start" in c]
    assert len(starts) == 2
    assert all(re.search(r"RAY_AUTH_MODE=token (\S+=\S+ )*ray start", c) for c in starts)
    assert "GRPC_ENABLE_FORK_SUPPORT=false ray start --head" in starts[0]  # Ray client connections (docs/cluster.md)
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    assert any("RAY_AUTH_MODE=token" in c for c in config["setup_commands"])  # drivers started on a node
    assert any("chmod 600 ~/.ray/auth_token" in c for c in config["setup_commands"])
    head_start = next(c for c in starts if "--head" in c)
    assert "--dashboard-host=127.0.0.1" in head_start


def test_all_nodes_join_one_prepared_security_group(config):
    # With SecurityGroupIds on every node type, Ray's AWS provider creates no group of its own
    # (its default group opens SSH to 0.0.0.0/0); the group comes from cluster-security-group.sh.
    groups = {json.dumps(t["node_config"]["SecurityGroupIds"]) for t in config["available_node_types"].values()}
    assert len(groups) == 1 and json.loads(groups.pop())
    assert "security_group" not in config["provider"]
    assert "0.0.0.0/0" not in json.dumps(config)
    assert "bash cluster-security-group.sh" in CLUSTER_YAML.read_text()


def test_nodes_use_an_image_with_a_recent_python(config):
    images = {t["node_config"].get("ImageId") for t in config["available_node_types"].values()}
    assert len(images) == 1 and images.pop().startswith("ami-")  # not Ray's Ubuntu 18.04 default


@pytest.fixture
def aws_recorder(tmp_path, monkeypatch) -> Path:
    """An `aws` on PATH that records its arguments and answers like the EC2 API."""
    log = tmp_path / "aws-calls.txt"
    fake = tmp_path / "bin" / "aws"
    fake.parent.mkdir()
    fake.write_text(
        "#!/usr/bin/env bash\n"
        f'printf "%s\\n" "$*" >> {shlex.quote(str(log))}\n'
        'case "$2" in describe-vpcs) echo vpc-0test;; create-security-group) echo sg-0test;; esac\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    return log


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SECURITY_GROUP_SCRIPT), *args], capture_output=True, text=True)


def test_security_group_allows_ssh_from_the_range_and_members_only(aws_recorder):
    done = run_script("203.0.113.7/32")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "sg-0test"
    calls = aws_recorder.read_text().splitlines()
    ingress = [c for c in calls if "authorize-security-group-ingress" in c]
    assert len(ingress) == 2
    assert any("--protocol tcp --port 22 --cidr 203.0.113.7/32" in c for c in ingress)
    assert any("--protocol all --source-group sg-0test" in c for c in ingress)
    assert all("--region us-west-2" in c for c in calls)
    assert not any("egress" in c or "0.0.0.0/0" in c for c in calls)


@pytest.mark.parametrize("bad", ["0.0.0.0/0", "10.0.0.0/7", "203.0.113.7", "203.0.113.300/32", ""])
def test_security_group_refuses_an_open_or_malformed_range(aws_recorder, bad):
    done = run_script(bad)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and f"'{bad}'" in done.stderr
    assert not aws_recorder.exists()  # nothing was created


def test_security_group_region_matches_cluster_yaml(config):
    assert f"region=${{2:-{config['provider']['region']}}}" in SECURITY_GROUP_SCRIPT.read_text()
