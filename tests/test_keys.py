"""fer.core.keys.content_key: the one key of every cache and resume state."""
import os
from pathlib import Path

import numpy as np

from fer.core.keys import content_key


def test_arrays_are_keyed_by_dtype_shape_and_bytes():
    a = np.arange(12, dtype=np.uint8)
    assert content_key(a) == content_key(a.copy())
    assert content_key(a) != content_key(a.reshape(3, 4))           # same bytes, other shape
    assert content_key(a) != content_key(a.astype(np.int8))         # same bytes, other dtype
    b = a.copy()
    b[5] += 1
    assert content_key(a) != content_key(b)
    assert content_key(a[::2]) == content_key(np.ascontiguousarray(a[::2]))   # a view


def test_files_are_keyed_by_content_not_name_size_or_mtime(tmp_path):
    one, two = tmp_path / "one.bin", tmp_path / "two.bin"
    one.write_bytes(b"weights A")
    two.write_bytes(b"weights A")
    os.utime(two, (1, 1))
    assert content_key(one) == content_key(two)
    two.write_bytes(b"weights B")                 # same size, new bytes
    assert content_key(one) != content_key(two)
    assert content_key(one) != content_key(str(one))   # a path string is just a string


def test_parts_do_not_run_together_and_order_counts():
    assert content_key("ab", "c") != content_key("a", "bc")
    assert content_key("a", "b") != content_key("b", "a")
    assert content_key({"x": 1, "y": 2}) == content_key({"y": 2, "x": 1})
    assert len(content_key("a")) == 24 and len(content_key("a", length=16)) == 16


def test_modules_are_keyed_by_their_source(tmp_path, monkeypatch):
    import importlib
    (tmp_path / "shaping.py").write_text("SCALE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("shaping")
    before = content_key(module)
    Path(module.__file__).write_text("SCALE = 2\n")
    assert content_key(module) != before
