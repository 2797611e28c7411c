"""Quiet TensorFlow start-up: the CUDA plugin registration lines a CPU machine prints.

TensorFlow 2.19's wheel registers its cuDNN/cuFFT/cuBLAS factories twice and writes
"Unable to register ... factory", "computation placer already registered" and, with no
GPU driver, "failed call to cuInit" straight to file descriptor 2 from C++, before
TF_CPP_MIN_LOG_LEVEL is read (tensorflow/tensorflow#62075: harmless). `install()` wraps
the process's first `import tensorflow` (and its device discovery) so that those lines,
and only those, are dropped: everything else written meanwhile is passed on unchanged.
The stage scripts install it (stages/__init__.py); TF_CPP_MIN_LOG_LEVEL defaults to 2
(warnings and errors shown).
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile
from contextlib import contextmanager

NOISE = re.compile(rb"Unable to register cu(DNN|FFT|BLAS) factory|computation placer "
                   rb"already registered|All log messages before absl::InitializeLog\(\) "
                   rb"is called|failed call to cuInit")


@contextmanager
def native_stderr_filtered(noise: re.Pattern = NOISE):
    """Within the block, file descriptor 2 (C++ and Python alike) goes to a temporary
    file; afterwards its lines are written to the real stderr, less those matching
    `noise`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            for line in held.read().splitlines(keepends=True):
                if not noise.search(line):
                    os.write(2, line)


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
            with native_stderr_filtered():
                run(module)
                module.config.list_physical_devices("GPU")   # cuInit, before any op
        spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    """Filter the first `import tensorflow` of this process (no-op if it happened)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" not in sys.modules and \
            not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())
