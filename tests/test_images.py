import io

import numpy as np
import pytest
from PIL import Image

from fer.data.images import ImageError, read_rgb


def _save(path, img, **kw):
    img.save(path, **kw)
    return path


def test_modes_become_rgb_uint8(tmp_path):
    gray = Image.fromarray(np.arange(64 * 48, dtype=np.uint32).reshape(48, 64).astype(np.uint8))
    out = read_rgb(_save(tmp_path / "g.tiff", gray))
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8
    assert np.array_equal(out[..., 0], out[..., 2])
    pal = read_rgb(_save(tmp_path / "p.tiff", gray.convert("P")))
    assert np.array_equal(pal, out)
    sixteen = Image.fromarray((np.full((40, 40), 65535, np.uint16)))
    assert read_rgb(_save(tmp_path / "s.png", sixteen)).max() == 255
    rgba = Image.new("RGBA", (30, 30), (255, 0, 0, 0))             # fully transparent
    assert read_rgb(_save(tmp_path / "a.png", rgba))[0, 0].tolist() == [255, 255, 255]


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (60, 30), (10, 200, 10))
    exif = Image.Exif()
    exif[0x0112] = 6                                                # rotate 90 CW
    _save(tmp_path / "o.jpg", img, exif=exif)
    assert read_rgb(tmp_path / "o.jpg").shape == (60, 30, 3)


def test_truncated_and_non_image_name_the_file(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (200, 200), (1, 2, 3)).save(buf, "JPEG")
    bad = tmp_path / "cut.jpg"
    bad.write_bytes(buf.getvalue()[:300])
    with pytest.raises(ImageError, match=r"cut\.jpg: corrupt or truncated"):
        read_rgb(bad)
    txt = tmp_path / "notes.jpg"
    txt.write_text("hello")
    with pytest.raises(ImageError, match=r"notes\.jpg: not an image"):
        read_rgb(txt)
    with pytest.raises(ImageError, match="no such file"):
        read_rgb(tmp_path / "missing.png")
