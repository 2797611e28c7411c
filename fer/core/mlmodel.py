"""The grid's selected models in MLflow (docs/tracking.md): each cell's model.keras logged by
reference (`log_cell_model`: a DVC output already, so no bytes copied), and the shipped ones
packaged as pyfunc models and registered (`register_champion`).
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mlflow
import numpy as np

from fer.core.schema import EMOTIONS
from fer.core.tracking import open_experiment

REGISTERED, CHAMPION = "fer-expression", "champion"
VERSION_TAGS = ("cell", "train_set_md5", "dvc_stage", "test_selected", "keras_md5",
                "keras_path")
PACKAGE = Path(__file__).resolve().parents[1]


class KerasClassifier(mlflow.pyfunc.PythonModel):
    """A Keras classifier file taking uint8 RGB images; model_config names the modules
    that register its custom layers and the labels."""

    def load_context(self, context):
        import keras
        for module in context.model_config["imports"]:
            importlib.import_module(module)
        self.model = keras.saving.load_model(context.artifacts["keras"], compile=False)
        self.labels = list(context.model_config["labels"])

    def predict(self, context, model_input: np.ndarray, params=None):
        import pandas as pd
        probs = self.model.predict(np.asarray(model_input, dtype=np.uint8), verbose=0)
        return pd.DataFrame(probs, columns=self.labels)


def _md5(path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def _requirements() -> list[str]:
    out = []
    for p in ("mlflow", "tensorflow", "keras", "numpy", "pandas", "pydantic", "pyyaml"):
        with contextlib.suppress(PackageNotFoundError):     # tensorflow-cpu, -macos: unpinned
            out.append(f"{p}=={version(p)}")
    return out


def log_cell_model(keras_file, dvc_path, **tags) -> str:
    """Record `keras_file` once as an external model of the active run, tagged with `tags`,
    the DVC stage, the train-set digest, its md5 and `dvc_path`. Returns its id."""
    run = mlflow.active_run()
    md5 = _md5(keras_file)
    found = mlflow.search_logged_models(
        [run.info.experiment_id], output_format="list", filter_string=(
            f"tags.keras_md5 = '{md5}' AND source_run_id = '{run.info.run_id}'"))
    if found:
        return found[0].model_id
    inputs = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    train = [i.dataset.digest for i in inputs
             if {(t.key, t.value) for t in i.tags} >= {("mlflow.data.context", "training")}]
    return mlflow.create_external_model(
        name=str(tags.get("cell", "model")), model_type="keras file (DVC output)",
        tags={**{k: str(v) for k, v in tags.items()}, "keras_md5": md5,
              "keras_path": str(dvc_path),
              "dvc_stage": os.environ.get("DVC_STAGE", "none"),
              "train_set_md5": ",".join(train)}).model_id


def _package(reference, keras_path, example_set):
    """The pyfunc model of `keras_path`, attached to the run that trained it."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec
    example = np.asarray(np.load(Path(example_set) / "images.npy", mmap_mode="r")[:1])
    signature = ModelSignature(Schema([TensorSpec(np.dtype(np.uint8), (-1, *example.shape[1:]))]),
                               Schema([ColSpec("float", e) for e in EMOTIONS]))
    tags = {k: reference.tags[k] for k in VERSION_TAGS if k in reference.tags}
    model = mlflow.initialize_logged_model(
        name=reference.name, source_run_id=reference.source_run_id,
        experiment_id=reference.experiment_id, model_type="pyfunc",
        tags={**tags, "packaged": "pyfunc"})
    mlflow.pyfunc.log_model(
        name=reference.name, model_id=model.model_id, python_model=KerasClassifier(),
        artifacts={"keras": str(keras_path)}, code_paths=[str(PACKAGE)],
        signature=signature, input_example=example,
        model_config={"imports": ["fer.train.backbones"], "labels": list(EMOTIONS)},
        pip_requirements=_requirements())
    return mlflow.get_logged_model(model.model_id)


def register_champion(keras_path, example_set, aliases=(CHAMPION,)):
    """Package the model a cell recorded for `keras_path` (found by md5) and register it
    (each once), then point `aliases` at it. Returns the version, or None when no run
    recorded that file."""
    exp_id = open_experiment("finetune")         # the experiment the cells log to
    md5 = _md5(keras_path)

    def newest(extra=""):
        found = mlflow.search_logged_models(
            [exp_id], filter_string=f"tags.keras_md5 = '{md5}'{extra}", max_results=1,
            order_by=[{"field_name": "creation_time", "ascending": False}],
            output_format="list")
        return found[0] if found else None
    packaged = newest(" AND tags.packaged = 'pyfunc'")
    if packaged is None:
        reference = newest()
        if reference is None:
            print(f"MLflow: no logged model for {keras_path}; nothing registered")
            return None
        packaged = _package(reference, keras_path, example_set)
    client, uri = mlflow.MlflowClient(), f"models:/{packaged.model_id}"
    same = [v for v in client.search_model_versions(f"name = '{REGISTERED}'") if v.source == uri]
    version_ = same[0] if same else mlflow.register_model(
        uri, REGISTERED,
        tags={k: packaged.tags[k] for k in VERSION_TAGS if k in packaged.tags})
    for alias in aliases:
        client.set_registered_model_alias(REGISTERED, alias, version_.version)
    print(f"MLflow: {REGISTERED} version {version_.version} ({packaged.tags.get('cell')}) "
          f"is {', '.join(aliases)}")
    return version_
