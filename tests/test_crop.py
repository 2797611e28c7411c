import numpy as np
import pytest
from PIL import Image
from skimage import data

from fer.crop import CropSpec, NoFaceError, crop_faces, detect_face, detector_files, \
    load_detector


def test_detector_files_come_from_the_package():
    prototxt, model = detector_files()
    assert prototxt.name == "deploy.prototxt.txt" and prototxt.stat().st_size > 1000
    assert model.name == "res10_300x300_ssd_iter_140000.caffemodel"
    assert model.stat().st_size > 10_000_000


def test_astronaut_face_is_found():
    img = data.astronaut()                              # 512x512, one face, upper middle
    det = detect_face(load_detector(), img, 0.5)
    assert det is not None and det.confidence > 0.9
    x0, y0, x1, y1 = det.box
    assert 150 < (x0 + x1) / 2 < 300 and 40 < (y0 + y1) / 2 < 180
    assert 60 < x1 - x0 < 200


def test_crop_policies(tmp_path):
    face = tmp_path / "face.png"
    Image.fromarray(data.astronaut()).save(face)
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((120, 160, 3), 128, np.uint8)).save(blank)
    paths = [str(face), str(blank)]
    imgs, info = crop_faces(paths, CropSpec(size=224, no_face="center"), workers=1)
    assert imgs.shape == (2, 224, 224, 3) and imgs.dtype == np.uint8
    assert [i["detected"] for i in info] == [True, False]
    assert info[1]["box"] == (20, 0, 140, 120)
    assert imgs.max() > 200 and imgs.min() < 30              # 0-255 kept, not rescaled
    imgs, info = crop_faces(paths, CropSpec(size=64, no_face="skip"), workers=1)
    assert imgs.shape == (1, 64, 64, 3) and [i["kept"] for i in info] == [True, False]
    with pytest.raises(NoFaceError, match=r"blank\.png: no face"):
        crop_faces(paths, CropSpec(size=64, no_face="fail"), workers=1)
    with pytest.raises(ValueError, match="crop.no_face"):
        CropSpec(no_face="guess")


def test_two_workers_match_one(demo_root):
    root, _ = demo_root
    paths = [str(p) for p in sorted((root / "jaffe").glob("*.tiff"))[:20]]
    one, info1 = crop_faces(paths, CropSpec(size=48), workers=1)
    two, info2 = crop_faces(paths, CropSpec(size=48), workers=2)
    assert np.array_equal(one, two) and info1 == info2
    assert np.mean([i["detected"] for i in info1]) >= 0.9     # demo faces are detectable
