"""Stages print no CUDA/absl registration lines on a CPU machine (fer.quiet), and
nothing else written to stderr is lost."""
import os
import subprocess
import sys

from fer.params import ROOT
from fer.quiet import NOISE

SCRIPT = """
import os, sys
{setup}
import keras, tensorflow as tf
tf.constant(1) + 1
print("a warning of our own", file=sys.stderr)
"""


def _stderr(setup: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(setup=setup)], cwd=ROOT,
                         env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    return out.stderr.decode()


def test_stage_processes_start_tensorflow_quietly():
    noisy = _stderr("")
    assert len(NOISE.findall(noisy.encode())) >= 3          # what TF 2.19 prints here
    quiet = _stderr("import stages")                        # what `python -m stages.x` runs
    assert not NOISE.search(quiet.encode()), quiet
    assert "a warning of our own" in quiet
    assert len(quiet.splitlines()) <= 2, quiet
