"""Deterministic Keras model files: the same weights give the same bytes, so DVC does not
see a bit-identical re-run as a new output. `model.save` stamps zip entry times and
`date_saved` and keeps the optimizer; `save_model` writes architecture and weights only,
with fixed entry times, order and permissions. `keras.models.load_model` reads it.
"""
from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

import keras

from fer.core.atomic import write_text

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)          # the earliest time a zip entry can carry


def keras_bytes(model: keras.Model) -> bytes:
    """The deterministic .keras archive of `model` (architecture + weights, no optimizer)."""
    # a compiled model is rebuilt from its config, uncompiled (clone_model would compile
    # it); an uncompiled one is saved as it is (a rebuild costs ~3 s for InceptionResNetV2)
    plain = model
    if model.compiled or getattr(model, "optimizer", None) is not None:
        plain = type(model).from_config(model.get_config())
        plain.set_weights(model.get_weights())
    with tempfile.TemporaryDirectory() as tmp:
        plain.save(Path(tmp) / "model.keras")       # Keras only writes to a *.keras path
        raw = (Path(tmp) / "model.keras").read_bytes()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for name in sorted(src.namelist()):
            data = src.read(name)
            if name == "metadata.json":
                meta = json.loads(data)
                meta.pop("date_saved", None)
                data = json.dumps(meta, sort_keys=True).encode()
            elif name == "config.json":     # shared_object_id: a memory address, run to run
                data = json.dumps(json.loads(data, object_hook=lambda d: {
                    k: v for k, v in d.items() if k != "shared_object_id"})).encode()
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            dst.writestr(info, data)
    return out.getvalue()


def save_model(model: keras.Model, path) -> None:
    """Write `model` to the .keras file `path` atomically and deterministically."""
    write_text(path, keras_bytes(model))
