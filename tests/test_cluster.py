"""``python -m detector cluster-predict`` on a local Ray cluster of two worker nodes (Ray's own
``Cluster``: a head and a second node on this machine, one core each), against ``predict --json``
line for line over a few hundred images."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import DATA, REPO
from test_batch_scoring import assert_same_records

# Every node, driver and worker on the loopback interface: Ray otherwise binds to and dials the
# machine's network address (its "cluster" mode; read when Ray is imported).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

if os.environ.get("CI"):
    import ray  # CI installs requirements-scale.txt: a missing Ray fails there, it is not skipped
else:
    ray = pytest.importorskip("ray", reason="pip install -r requirements-scale.txt")

#: Each node's object store: small, on a machine shared with training runs.
OBJECT_STORE = 100 * 2**20


@pytest.fixture(scope="module")
def folder(tiny_set, tmp_path_factory):
    """A few hundred files: DFDC test crops and the tiny set's faces, a photo without a face,
    a broken file."""
    root = tmp_path_factory.mktemp("many")
    dfdc = sorted((DATA / "dfdc_faces" / "fake").glob("*.jpg"))[:120] + sorted((DATA / "dfdc_faces" / "real").glob("*.jpg"))[:120]
    for i, path in enumerate(dfdc + sorted(tiny_set.glob("*/*.png"))):
        shutil.copy(path, root / f"{i:04d}{path.suffix}")
    cv2.imwrite(str(root / "0005.png"), np.full((60, 80, 3), 90, np.uint8))
    (root / "0007.jpg").write_text("<html>not a jpeg</html>")
    return root


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 1, "object_store_memory": OBJECT_STORE, "node_ip_address": "127.0.0.1"}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    cluster.add_node(**node)
    cluster.wait_for_nodes()
    yield cluster
    cluster.shutdown()


def scorer_nodes(cluster) -> list[str]:
    """The node of each detector (Ray Data actor) the cluster has run so far, live or dead."""
    from ray._private.state import actors  # Ray's actor table (the public state API needs the dashboard)

    ray.init(address=cluster.address, logging_level="ERROR")
    try:
        return [a["Address"]["NodeID"] for a in actors().values() if "BatchScorer" in a["ActorClassName"]]
    finally:
        ray.shutdown()


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "detector", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=600, env={**os.environ, **(env or {})})


def test_two_nodes_give_the_cli_s_records_line_for_line(tiny_weights, folder, cluster, tmp_path):
    local = run_cli("--weights", tiny_weights, "predict", "--json", folder)
    assert local.returncode == 1, local.stderr  # the broken file
    out = tmp_path / "scores.jsonl"
    # Two detectors of one core each on a cluster of two one-core nodes: one on each node.
    done = run_cli("--weights", tiny_weights, "cluster-predict", folder, "--address", cluster.address,
                   "--actors", "2", "--batch-rows", "16", "--out", out)
    assert done.returncode == 1, done.stderr[-3000:]
    expected = [json.loads(line) for line in local.stdout.splitlines()]
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(got) == len(expected) > 250
    assert_same_records(got, expected)
    assert [r["error"] is not None for r in got].count(True) == 1
    nodes = scorer_nodes(cluster)
    assert len(nodes) == len(set(nodes)) == 2  # two detectors, one on each node

    # A file list gives the same lines; with --overlays (a relative folder: the actors get it
    # absolute), the overlays of predict --overlays too.
    # With them a clip, scored on as many frames as --max-frames allows.
    import videos

    inputs = [r["path"] for r in expected[:40]] + [str(videos.no_face(tmp_path / "sky.mp4", seconds=6.0))]
    listed = tmp_path / "list.txt"
    listed.write_text("\n".join(inputs) + "\n")
    drawn = run_cli("--weights", tiny_weights, "predict", "--json", "--overlays", tmp_path / "local",
                    "--max-frames", "5", *inputs)
    done = run_cli("--weights", tiny_weights, "cluster-predict", "--file-list", listed, "--address", cluster.address,
                   "--batch-rows", "8", "--overlays", os.path.relpath(tmp_path / "ray", REPO), "--max-frames", "5")
    assert done.returncode == 1, done.stderr[-3000:]
    got = [json.loads(line) for line in done.stdout.splitlines()]
    local = [json.loads(line) for line in drawn.stdout.splitlines()]
    assert_same_records([{k: v for k, v in r.items() if k != "overlay"} for r in got[:40]], expected[:40])
    assert got[40]["frames_scored"] == local[40]["frames_scored"] == 5 and got[40]["label"] == "no face"
    assert sum("overlay" in r for r in got) == sum("overlay" in r for r in local) > 30
    for mine, theirs in zip(got, local):
        if "overlay" in theirs:
            ray_png, local_png = Path(mine["overlay"]), Path(theirs["overlay"])
            assert ray_png.relative_to(tmp_path / "ray") == local_png.relative_to(tmp_path / "local")
            assert cv2.imread(str(ray_png)).shape == cv2.imread(str(local_png)).shape


def test_usage_errors_are_one_line(tiny_weights, tmp_path):
    both = run_cli("cluster-predict", tmp_path, "--file-list", tmp_path / "list.txt")
    neither = run_cli("cluster-predict")
    bad_weights = run_cli("--weights", tmp_path, "cluster-predict", tmp_path)
    no_weights = run_cli("--weights", tmp_path / "missing", "cluster-predict", tmp_path)
    for done in (both, neither, bad_weights, no_weights):
        assert done.returncode == 2 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr
