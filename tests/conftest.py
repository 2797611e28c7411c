import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

import numpy as np  # noqa: E402

from fer.data.demo import make_demo_data  # noqa: E402
from fer.edge.tfjs import export_variants  # noqa: E402
from fer.train.finetune import seed_everything  # noqa: E402
from fer.train.keras_io import save_model  # noqa: E402
from fer.data.labels import EMOTIONS  # noqa: E402
from fer.train.backbones import ModelSpec, build_classifier  # noqa: E402
# tests/needs.py's hooks: @needs(...) marks skip, or under CI=true fail, before set-up
import needs  # noqa: E402
from needs import pytest_configure, pytest_runtest_setup  # noqa: E402,F401

# The longest test files (docs/benchmarks.md#the-test-suite) are collected first, and
# `make test` keeps that order (--no-loadscope-reorder): xdist queues whole files on a
# worker, so one of these queued last would leave the other worker idle for minutes.
LONGEST_FIRST = ("test_byo_dag.py", "test_dvc_deps.py", "test_resume.py",
                 "test_tracking_server.py", "test_queue.py", "test_ray.py")


def pytest_collection_modifyitems(config, items):
    needs.pytest_collection_modifyitems(config, items)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))    # stable

# documented bounds on the largest probability difference of a TF.js variant from Keras
BOUNDS = {"float32": 1e-4, "float16": 5e-3, "uint16": 5e-3, "uint8": 5e-2}


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    """The demo databases (demo scale, seed 0), written once per test session: under
    pytest-xdist the first worker that needs them writes them into the session's shared
    temporary folder (under a file lock) and the others read that copy, the same bytes
    they would have written themselves (the demo data are seeded). Tests only read or
    copy them."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        root = tmp_path_factory.mktemp("demo") / "data"
        return root, make_demo_data(root, "demo", seed=0)
    import fcntl
    shared = tmp_path_factory.getbasetemp().parent / "demo_root"   # one per session
    shared.mkdir(exist_ok=True)
    root, done = shared / "data", shared / "counts.json"
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)          # released when the file closes
        if not done.is_file():
            done.write_text(json.dumps(make_demo_data(root, "demo", seed=0)))
    return root, json.loads(done.read_text())


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("edge")
    seed_everything(0)
    model, _ = build_classifier(ModelSpec(name="vgg16", k=5, preprocess="caffe",
                                          weights="none", input_size=32))
    head = model.get_layer("emotion")
    kernel, bias = head.get_weights()
    head.set_weights([kernel * 40, bias])            # confident outputs: stable argmax
    save_model(model, tmp / "model.keras")           # what the export stage reads
    meta = {"model": "vgg16", "train_set": "TINY", "input_size": 32, "preprocess": "caffe",
            "labels": list(EMOTIONS)}
    sizes = export_variants(tmp / "model.keras", tmp, list(BOUNDS), meta)
    images = np.random.default_rng(1).integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    reference = model.predict(images.astype(np.float32), verbose=0)     # 0-255 pixels
    return tmp, sizes, images, reference, model
