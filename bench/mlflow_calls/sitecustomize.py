"""Counts and times every call into MLflow's stores, for bench/mlflow_calls.py.

On PYTHONPATH (with FER_MLFLOW_CALLS=<file>) every Python process, the DVC stages among
them, wraps the public methods of MLflow's SQLite tracking and registry stores and of its
local artifact repository once they are imported; at exit it appends one JSON line
{argv, calls: {method: [count, seconds]}} to that file. Nested store calls are counted
once, at the outermost call."""
import atexit
import importlib.abc
import importlib.util
import json
import os
import sys
import time

TARGETS = {"mlflow.store.tracking.sqlalchemy_store": "SqlAlchemyStore",
           "mlflow.store.model_registry.sqlalchemy_store": "SqlAlchemyStore",
           "mlflow.store.tracking.rest_store": "RestStore",
           "mlflow.store.artifact.local_artifact_repo": "LocalArtifactRepository",
           "mlflow.pyfunc": "log_model"}     # saving a model (copies, its check) too
CALLS, DEPTH = {}, [0]


def _wrap(module, cls_name):
    cls = getattr(module, cls_name)
    if not isinstance(cls, type):                      # a module-level function
        cls = module
        items = [(cls_name, getattr(module, cls_name))]
    else:
        items = list(vars(cls).items())
    for name, fn in items:
        if name.startswith("_") or not callable(fn) or isinstance(fn, (staticmethod, classmethod)):
            continue

        def wrapper(*a, __fn=fn, __key=f"{module.__name__.split('.')[-2 if cls is not module else -1]}.{name}", **k):
            DEPTH[0] += 1
            t = time.perf_counter()
            try:
                return __fn(*a, **k)
            finally:
                DEPTH[0] -= 1
                if DEPTH[0] == 0:
                    c = CALLS.setdefault(__key, [0, 0.0])
                    c[0] += 1
                    c[1] += time.perf_counter() - t
        setattr(cls, name, wrapper)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in TARGETS:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        exec_module = spec.loader.exec_module

        def exec_and_wrap(module):
            exec_module(module)
            _wrap(module, TARGETS[name])
        spec.loader.exec_module = exec_and_wrap
        return spec


def _dump():
    if CALLS:
        with open(os.environ["FER_MLFLOW_CALLS"], "a") as f:
            f.write(json.dumps({"argv": sys.argv, "calls": CALLS}) + "\n")


if os.environ.get("FER_MLFLOW_CALLS"):
    sys.meta_path.insert(0, _Finder())
    atexit.register(_dump)
