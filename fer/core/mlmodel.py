"""The grid's selected models as MLflow models; the shipped one registered as champion.

- `log_cell_model`: a finetune cell logs its selected seed's model.keras once, as a pyfunc
  model (`KerasClassifier`): uint8 face pixels (N, size, size, 3) in, one probability
  per emotion out (a DataFrame, one column each), with that signature and one face of
  the train set as input example. The model holds its own copy of the .keras file and
  of the `fer` package, so it loads outside the repository too.
- `register_champion`: the export stage registers the model it ships (found by the md5
  of its model.keras) as a version of `REGISTERED` and points the alias `champion` at
  it, so the alias moves when the shipped model changes.
"""
from __future__ import annotations

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
VERSION_TAGS = ("cell", "train_set_md5", "dvc_stage", "test_selected", "keras_md5")
PACKAGE = Path(__file__).resolve().parents[1]


class KerasClassifier(mlflow.pyfunc.PythonModel):
    """A Keras classifier file taking uint8 RGB images; model_config names the modules
    that register its custom layers (the Normalize input layer) and the labels."""

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
        try:
            out.append(f"{p}=={version(p)}")
        except PackageNotFoundError:
            pass
    return out


def log_cell_model(keras_path, example_set, **tags) -> str:
    """Log `keras_path` as an MLflow model of the active run, once (a resumed run keeps
    the one it has); tagged with `tags` (cell, test_selected), the DVC stage, the run's
    training-set digest and the file's md5. Returns the model id."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec
    run = mlflow.active_run()
    md5 = _md5(keras_path)
    found = mlflow.search_logged_models(
        [run.info.experiment_id], output_format="list", filter_string=(
            f"tags.keras_md5 = '{md5}' AND source_run_id = '{run.info.run_id}'"))
    if found:
        return found[0].model_id
    inputs = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    train = [i.dataset.digest for i in inputs
             if {(t.key, t.value) for t in i.tags} >= {("mlflow.data.context", "training")}]
    example = np.asarray(np.load(Path(example_set) / "images.npy", mmap_mode="r")[:1])
    signature = ModelSignature(Schema([TensorSpec(np.dtype(np.uint8), (-1, *example.shape[1:]))]),
                               Schema([ColSpec("float", e) for e in EMOTIONS]))
    info = mlflow.pyfunc.log_model(
        name="model", python_model=KerasClassifier(), artifacts={"keras": str(keras_path)},
        code_paths=[str(PACKAGE)], signature=signature, input_example=example,
        model_config={"imports": ["fer.train.backbones"], "labels": list(EMOTIONS)},
        pip_requirements=_requirements(),
        tags={**{k: str(v) for k, v in tags.items()}, "keras_md5": md5,
              "dvc_stage": os.environ.get("DVC_STAGE", "none"),
              "train_set_md5": ",".join(train)})
    return info.model_id


def register_champion(keras_path):
    """Register the model logged for `keras_path` (by its md5, in the finetune
    experiment) as a version of REGISTERED (once) with its tags, and point `champion`
    at it. Returns the version, or None when no run logged that file."""
    exp_id = open_experiment("finetune")         # the experiment the cells log to
    found = mlflow.search_logged_models(
        [exp_id], filter_string=f"tags.keras_md5 = '{_md5(keras_path)}'", max_results=1,
        order_by=[{"field_name": "creation_time", "ascending": False}], output_format="list")
    if not found:
        print(f"MLflow: no logged model for {keras_path}; nothing registered")
        return None
    model, client, uri = found[0], mlflow.MlflowClient(), f"models:/{found[0].model_id}"
    same = [v for v in client.search_model_versions(f"name = '{REGISTERED}'") if v.source == uri]
    version_ = same[0] if same else mlflow.register_model(
        uri, REGISTERED,
        tags={k: model.tags[k] for k in VERSION_TAGS if k in model.tags})
    client.set_registered_model_alias(REGISTERED, CHAMPION, version_.version)
    print(f"MLflow: {REGISTERED} version {version_.version} ({model.tags.get('cell')}) "
          f"is {CHAMPION}")
    return version_
