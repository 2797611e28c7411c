"""The one content key of every cache and resume state: `content_key(*parts)`, a sha256 over
each part hashed on its own (an array by dtype, shape and bytes; a Path by its file's bytes;
a module by its source; dataclasses, pydantic models and JSON values as sorted JSON).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import types
from pathlib import Path


def _digest(part) -> bytes:
    h = hashlib.sha256()
    if hasattr(part, "dtype") and hasattr(part, "shape") and hasattr(part, "tobytes"):
        import numpy as np
        a = np.ascontiguousarray(part)
        h.update(f"array {a.dtype} {a.shape}".encode())
        h.update(memoryview(a.reshape(-1)).cast("B"))
    elif isinstance(part, Path):
        with open(part, "rb") as f:
            h.update(hashlib.file_digest(f, "sha256").digest())
    elif isinstance(part, types.ModuleType):
        h.update(Path(part.__file__).read_bytes())
    else:
        if dataclasses.is_dataclass(part) and not isinstance(part, type):
            part = dataclasses.asdict(part)
        elif hasattr(part, "model_dump"):
            part = part.model_dump()
        h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.digest()


def content_key(*parts, length: int = 24) -> str:
    """A hex key of `parts`, `length` characters long."""
    h = hashlib.sha256()
    for part in parts:
        h.update(_digest(part))
    return h.hexdigest()[:length]


def versions() -> str:
    """TensorFlow, Keras and NumPy versions (a part of keys of computed numbers)."""
    import keras
    import numpy as np
    import tensorflow as tf
    return f"tf {tf.__version__} keras {keras.__version__} numpy {np.__version__}"
