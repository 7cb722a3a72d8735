"""Training under tf.distribute: two logical CPU devices stand in for two GPUs, and a
one-worker TF_CONFIG for a cluster. Each run is a subprocess, because devices and the
collective runtime are fixed when TensorFlow starts."""

import json
import socket
import subprocess
import sys

import pytest

from conftest import REPO

RUN = """
import json, sys
import tensorflow as tf

devices = int(sys.argv[4])
if devices > 1:  # must come before anything initializes TensorFlow's devices
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)

import keras
from detector.training import TrainConfig, distribution_strategy, train

strategy_name, tiny_set, out = sys.argv[1:4]
cfg = TrainConfig.quick(out, sets=[tiny_set], cache_dir=out + "/cache", strategy=strategy_name,
                        epochs=1, steps_per_epoch=2)
replicas = distribution_strategy(strategy_name).num_replicas_in_sync
card = train(cfg)
model = keras.saving.load_model(out + "/model.keras")
print(json.dumps({"replicas": replicas, "loss": card.training["history"]["loss"],
                  "n_test": card.metrics["test"]["overall"]["n"], "params": model.count_params()}))
"""


def train_in_subprocess(strategy: str, tiny_set, out, devices: int = 1, env: dict | None = None) -> dict:
    import os

    done = subprocess.run([sys.executable, "-c", RUN, strategy, str(tiny_set), str(out), str(devices)],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_mirrored_training_on_two_devices(tiny_set, tmp_path):
    result = train_in_subprocess("mirrored", tiny_set, tmp_path, devices=2)
    assert result["replicas"] == 2
    assert len(result["loss"]) == 1 and 0 < result["loss"][0] < 20
    # Validation and test ran on the mirrored model without duplicated rows.
    assert result["n_test"] == 16 and result["params"] > 0
    assert (tmp_path / "model_card.json").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_multiworker_training_with_a_one_worker_cluster(tiny_set, tmp_path):
    tf_config = {"cluster": {"worker": [f"localhost:{_free_port()}"]}, "task": {"type": "worker", "index": 0}}
    result = train_in_subprocess("multiworker", tiny_set, tmp_path, env={"TF_CONFIG": json.dumps(tf_config)})
    assert result["replicas"] == 1 and result["n_test"] == 16
    assert (tmp_path / "model.keras").exists()  # worker 0 is the chief: it writes


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
