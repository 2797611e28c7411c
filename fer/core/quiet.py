"""Quiet TensorFlow start-up: drop the CUDA plugin registration lines TF 2.19 writes to fd 2
from C++ before TF_CPP_MIN_LOG_LEVEL is read (harmless: tensorflow/tensorflow#62075), and
only those. stages/__init__.py installs it; TF_CPP_MIN_LOG_LEVEL defaults to 2.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import os
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

NOISE = re.compile(rb"Unable to register cu(DNN|FFT|BLAS) factory|computation placer "
                   rb"already registered|All log messages before absl::InitializeLog\(\) "
                   rb"is called")


def noise() -> re.Pattern:
    """With no NVIDIA driver here, TensorFlow's failed CUDA start is noise too; with one, it
    is the line that says why training runs on the CPU, so it stays."""
    if Path("/dev/nvidiactl").exists():
        return NOISE
    return re.compile(NOISE.pattern + rb"|failed call to cuInit")


# the filter runs in a process of its own, so that what the importing process wrote
# before a crash (an abort, a segfault) still reaches the terminal
FILTER = """
import os, re, sys
noise, pending = re.compile(sys.argv[1].encode("latin-1")), b""
while chunk := os.read(0, 65536):
    *lines, pending = (pending + chunk).split(b"\\n")
    for line in lines:
        if not noise.search(line):
            os.write(1, line + b"\\n")
if pending and not noise.search(pending):
    os.write(1, pending)
"""


@contextmanager
def native_stderr_filtered(noise: re.Pattern = NOISE):
    """Within the block, fd 2 (C++ and Python alike) goes through a filter process that
    passes each line on to the real stderr, less those matching `noise`."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    read_end, write_end = os.pipe()
    filt = subprocess.Popen([sys.executable, "-c", FILTER, noise.pattern.decode("latin-1")],
                            stdin=read_end, stdout=saved)
    os.close(read_end)
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)                  # closes the pipe's last write end: EOF
        os.close(saved)
        try:
            filt.wait(timeout=10)
        except subprocess.TimeoutExpired:  # something still holds the pipe: the filter
            pass                           # ends when that does


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)                  # once, and not for the lookup below
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            with native_stderr_filtered(noise()):
                run(module)
                try:
                    module.config.list_physical_devices("GPU")   # cuInit, before any op
                except Exception:              # a broken device setup shows up later,
                    pass                       # when TensorFlow first needs it
        spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    """Filter the first `import tensorflow` of this process (no-op if it happened)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" not in sys.modules and \
            not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())
