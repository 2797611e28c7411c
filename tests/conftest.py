import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from fer.demo_data import make_demo_data  # noqa: E402


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    """The demo databases (demo scale, seed 0), written once per test session."""
    root = tmp_path_factory.mktemp("demo") / "data"
    counts = make_demo_data(root, "demo", seed=0)
    return root, counts
