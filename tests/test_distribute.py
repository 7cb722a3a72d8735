"""Training under tf.distribute: two logical CPU devices stand in for two GPUs, and two
processes on localhost for a cluster of two workers. Each run is a subprocess, because
devices and the collective runtime are fixed when TensorFlow starts."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from conftest import REPO
from detector.bench import free_port

RUN = """
import json, sys
import tensorflow as tf

devices = int(sys.argv[4])
if devices > 1:  # must come before anything initializes TensorFlow's devices
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)

from detector.training import TrainConfig, distribution_strategy, train

strategy_name, tiny_set, out = sys.argv[1:4]
cfg = TrainConfig.quick(out, sets=[tiny_set], cache_dir=out + "-cache", strategy=strategy_name,
                        epochs=1, steps_per_epoch=2)
replicas = distribution_strategy(strategy_name).num_replicas_in_sync
card = train(cfg)
print(json.dumps({"replicas": replicas, "loss": card.training["history"]["loss"],
                  "n_test": card.metrics["test"]["overall"]["n"], "params": card.architecture["parameters"]}))
"""


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen]]:
    """The training processes a test starts; any still running when it ends (a timed-out worker
    waits forever for its peer) is killed, so no orphan holds the cores for the tests after it."""
    runs: list[subprocess.Popen] = []
    yield runs
    for run in runs:
        if run.poll() is None:
            run.kill()
            run.wait()


def start_training(started: list, strategy: str, tiny_set, out, devices: int = 1,
                   env: dict | None = None) -> subprocess.Popen:
    run = subprocess.Popen([sys.executable, "-c", RUN, strategy, str(tiny_set), str(out), str(devices)],
                           cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
    started.append(run)
    return run


def result_of(run: subprocess.Popen) -> dict:
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_mirrored_training_on_two_devices(started, tiny_set, tmp_path):
    result = result_of(start_training(started, "mirrored", tiny_set, tmp_path, devices=2))
    assert result["replicas"] == 2
    assert len(result["loss"]) == 1 and 0 < result["loss"][0] < 20
    # Validation and test ran on the mirrored model without duplicated rows.
    assert result["n_test"] == 16 and result["params"] > 0
    assert (tmp_path / "model_card.json").exists()


def test_multiworker_training_on_a_cluster_of_two(started, tiny_set, tmp_path):
    cluster = {"worker": [f"localhost:{free_port()}", f"localhost:{free_port()}"]}
    runs = [start_training(started, "multiworker", tiny_set, tmp_path / f"worker{i}",
                           env={"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})})
            for i in (0, 1)]
    chief, other = (result_of(run) for run in runs)
    assert chief["replicas"] == other["replicas"] == 2
    assert chief["loss"] == other["loss"] and 0 < chief["loss"][0] < 20  # one model, trained in step
    assert chief["n_test"] == 16
    assert (tmp_path / "worker0" / "model.keras").exists()  # worker 0 is the chief: it writes
    assert not (tmp_path / "worker1").exists()  # the other worker writes elsewhere


@pytest.mark.parametrize("cluster, task, chief", [
    ({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 0}, True),
    ({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 1}, False),
    ({"chief": ["c:1"], "worker": ["a:1"]}, {"type": "chief", "index": 0}, True),
    ({"chief": ["c:1"], "worker": ["a:1"]}, {"type": "worker", "index": 0}, False),
])
def test_only_the_chief_writes(monkeypatch, cluster, task, chief):
    from types import SimpleNamespace

    import tensorflow as tf

    from detector.training import is_chief

    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    assert is_chief(SimpleNamespace(cluster_resolver=resolver)) is chief
    assert is_chief(tf.distribute.get_strategy())


def test_unknown_strategy_is_refused():
    from detector.training import distribution_strategy

    with pytest.raises(ValueError, match="'tpu'"):
        distribution_strategy("tpu")
