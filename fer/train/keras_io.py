"""Deterministic Keras model files: the same weights give the same bytes.

`model.save` writes a .keras zip whose bytes change on every save (zip entry times,
`date_saved` in metadata.json) and which carries the optimizer state of a compiled model.
DVC then sees a re-run with bit-identical weights as a new output. `save_model` writes
the architecture and weights only (the `include_optimizer=False` of Keras 2: kept models
are for inference), with fixed zip entry times, order and permissions, and metadata
without `date_saved`. `keras.models.load_model` reads it as any .keras file.
"""
from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

import keras

from fer.core.atomic import atomic_file

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)          # the earliest time a zip entry can carry


def keras_bytes(model: keras.Model) -> bytes:
    """The deterministic .keras archive of `model` (architecture + weights, no optimizer)."""
    # a compiled model is rebuilt from its config, uncompiled: no optimizer state, no
    # compile_config (keras.models.clone_model would compile the copy as the original
    # is); an uncompiled one (the grid's, fer.train.finetune.Cell) is saved as it is, which
    # skips rebuilding a backbone (InceptionResNetV2: ~3 s a save) and writes the same
    # bytes once `_plain_config` drops what a rebuilt model would not carry
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
            elif name == "config.json":
                data = json.dumps(_plain_config(json.loads(data))).encode()
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            dst.writestr(info, data)
    return out.getvalue()


def _plain_config(node):
    """`node` without `shared_object_id`: Keras writes it where layers share one object
    (their dtype policy, in a model built in this process), and its value is that
    object's memory address, so it changes from run to run; loading without it gives
    each layer its own equal object."""
    if isinstance(node, dict):
        return {k: _plain_config(v) for k, v in node.items() if k != "shared_object_id"}
    if isinstance(node, list):
        return [_plain_config(v) for v in node]
    return node


def save_model(model: keras.Model, path) -> None:
    """Write `model` to the .keras file `path` atomically and deterministically."""
    data = keras_bytes(model)
    with atomic_file(path, "wb") as f:
        f.write(data)
