"""Stages print no CUDA/absl registration lines on a CPU machine (fer.core.quiet), and
nothing else written to stderr is lost."""
import os
import subprocess
import sys

from fer.core.params import ROOT
from fer.core.quiet import NOISE

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


CRASH = """
import os
from fer.core.quiet import native_stderr_filtered
with native_stderr_filtered():
    os.write(2, b"Unable to register cuDNN factory: noise\\nF a fatal line\\n")
    os.abort()
"""


def test_a_crash_inside_the_filter_keeps_its_message():
    out = subprocess.run([sys.executable, "-c", CRASH], cwd=ROOT, capture_output=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert out.returncode != 0
    assert b"F a fatal line" in out.stderr and not NOISE.search(out.stderr)


def test_no_usable_stderr_still_imports(tmp_path):
    # fd 2 closed: the filter steps aside instead of failing the import
    script = ("import os; os.close(2)\nimport stages\nimport tensorflow as tf\n"
              "tf.constant(1) + 1\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert out.returncode == 0
