import numpy as np
import pytest
from PIL import Image
from skimage import data

from fer.data.crop import NoFaceError, crop_faces, detect_face, detector_files, load_detector
from sections import section


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
    imgs, info = crop_faces(paths, section("crop", size=224, no_face="center", workers=1),
                             True)
    assert imgs.shape == (2, 224, 224, 3) and imgs.dtype == np.uint8
    assert [i["detected"] for i in info] == [True, False]
    assert info[1]["box"] == (20, 0, 140, 120)
    assert imgs.max() > 200 and imgs.min() < 30              # 0-255 kept, not rescaled
    imgs, info = crop_faces(paths, section("crop", size=64, no_face="skip", workers=1), True)
    assert imgs.shape == (1, 64, 64, 3) and [i["kept"] for i in info] == [True, False]
    with pytest.raises(NoFaceError, match=r"blank\.png: no face"):
        crop_faces(paths, section("crop", size=64, no_face="fail", workers=1), True)
    with pytest.raises(ValueError, match="no_face"):
        section("crop", no_face="guess")
    with pytest.raises(ValueError, match="greater than or equal to 8"):
        section("crop", size=4)


def test_two_workers_match_one(demo_root):
    root, _ = demo_root
    paths = [str(p) for p in sorted((root / "jaffe").glob("*.tiff"))[:20]]
    one, info1 = crop_faces(paths, section("crop", size=48, workers=1), True)
    two, info2 = crop_faces(paths, section("crop", size=48, workers=2), True)
    assert np.array_equal(one, two) and info1 == info2
    assert np.mean([i["detected"] for i in info1]) >= 0.9     # demo faces are detectable


# --- pre-cropped faces (issue 9) ------------------------------------------------------

from fer.data.crop import detection_summary, expand_box  # noqa: E402
from fer.data.demo import write_tight_crops  # noqa: E402


def test_square_box_stays_square_at_the_image_border():
    # a 20x40 face touching the left border of a 60x60 image: the 40x40 square must be
    # shifted inside, not clipped to 30x40 (a distorted resize)
    assert expand_box((0, 10, 20, 50), (60, 60), 0.0, True) == (0, 10, 40, 50)
    assert expand_box((40, 0, 60, 30), (60, 60), 0.0, True) == (30, 0, 60, 30)
    # with a margin the side grows, capped at the shorter image side
    x0, y0, x1, y1 = expand_box((10, 5, 30, 45), (48, 80), 0.25, True)
    assert x1 - x0 == y1 - y0 == 48 and 0 <= x0 and x1 <= 80 and y1 <= 48
    for box, shape in [((3, 7, 51, 40), (64, 64)), ((100, 20, 180, 150), (160, 200)),
                       ((0, 0, 48, 48), (48, 48)), ((5, 30, 25, 47), (48, 48))]:
        for margin in (0.0, 0.1, 0.3):
            x0, y0, x1, y1 = expand_box(box, shape, margin, True)
            assert x1 - x0 == y1 - y0 and x0 >= 0 and y0 >= 0
            assert x1 <= shape[1] and y1 <= shape[0]
    # without square: the enlarged rectangle, clipped (unchanged behaviour)
    assert expand_box((0, 10, 20, 50), (60, 60), 0.0, False) == (0, 10, 20, 50)
    assert expand_box((10, 10, 30, 50), (60, 60), 0.5, False) == (0, 0, 40, 60)


def test_padding_maps_boxes_back_to_the_image():
    img = data.astronaut()
    net = load_detector()
    plain = detect_face(net, img, 0.5).box
    padded = detect_face(net, img, 0.5, pad=0.25).box
    inter = (max(0, min(plain[2], padded[2]) - max(plain[0], padded[0]))
             * max(0, min(plain[3], padded[3]) - max(plain[1], padded[1])))
    area = lambda b: (b[2] - b[0]) * (b[3] - b[1])            # noqa: E731
    assert inter / (area(plain) + area(padded) - inter) > 0.8  # same face, same place


@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    root = tmp_path_factory.mktemp("tight")
    write_tight_crops(root, seed=0)
    return sorted(str(p) for p in (root / "ck48").rglob("*.png"))


def test_pad_finds_tight_crops_and_low_rates_warn(tight):
    assert len(tight) == 42
    crop = section("crop", size=48, no_face="skip", workers=1)     # min_detection_rate 0.9
    _, info = crop_faces(tight, crop, True)
    summary, warning = detection_summary(info, crop, True, "ck48")
    assert summary["detected"] == 10                             # measured 10 of 42
    assert summary["best_box_out_of_frame"] == 40                # no context: boxes stray
    assert "crop.pad" in warning and "data.databases.ck48.detect: false" in warning
    assert summary["warning"] == warning

    crop = crop.model_copy(update={"pad": 0.25})
    images, info = crop_faces(tight, crop, True)
    summary, warning = detection_summary(info, crop, True, "ck48")
    # measured 33 of 42 (the code that clipped out-of-frame boxes said 39: 6 fragments)
    assert summary["detected"] == 33 and summary["best_box_out_of_frame"] == 13
    assert summary["pad"] == 0.25 and len(images) == summary["detected"]
    boxes = [i["box"] for i in info if i["detected"]]
    assert all(0 <= x0 < x1 <= 48 and 0 <= y0 < y1 <= 48 for x0, y0, x1, y1 in boxes)
    assert all(x1 - x0 == y1 - y0 for x0, y0, x1, y1 in boxes)  # crop.square
    # a tight crop is all face: every kept box covers most of it, none is a fragment
    assert min((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in boxes) >= 0.5 * 48 * 48


def test_detect_false_is_reported_as_not_run(tight):
    crop = section("crop", size=32, workers=1)
    images, info = crop_faces(tight[:5], crop, False)
    assert images.shape == (5, 32, 32, 3)
    assert [i["detected"] for i in info] == [None] * 5
    summary, warning = detection_summary(info, crop, False, "ck48")
    assert summary == {"images": 5, "detect": False, "detected": None,
                       "detection_rate": None}
    assert warning is None


def test_crop_stage_per_database_pad_and_metrics(tight, tmp_path, monkeypatch):
    import json
    from pathlib import Path

    import yaml

    from stages import crop, import_data
    from fer.core.params import compose
    root = Path(tight[0]).parent.parent
    params = compose(["profile=demo"])               # a whole, valid configuration ...
    params["data"]["databases"]["tight"] = {        # ... with the user's database
        "kind": "folders", "name": "ck48", "path": str(root),
        "class_policy": "skip", "require_all": False, "pad": 0.25}
    params["crop"].update(size=80, confidence=0.5, no_face="center", margin=0.0,
                          square=True, pad=0.0, min_detection_rate=0.9, workers=1)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    import_data.main("tight")
    crop.main("tight")
    report = json.loads(Path("metrics/crop/tight.json").read_text())
    assert report["images"] == report["kept"] == 36 and report["pad"] == 0.25
    assert report["detection_rate"] == 0.75 and report["square"] is True   # 27 of 36
    assert report["best_box_out_of_frame"] == 11 and "max_out_of_frame_share" in report["warning"]
    misses = Path("reports/crop/tight_misses.csv").read_text().splitlines()
    assert len(misses) == 1 + 36 - report["detected"]


@pytest.mark.parametrize("style_name", ["kdef", "ck", "jaffe", "pfa", "actor", "tight"])
def test_every_kept_demo_crop_is_the_drawn_face(tmp_path, style_name):
    """The demo databases' styles, drawn with their ground-truth face box (the skin
    ellipse): every crop the stage keeps overlaps it (IoU >= 0.5; measured >= 0.59), with
    and without padding, so no demo crop is a fragment."""
    from dataclasses import replace

    from fer.data.demo import TIGHT_STYLE
    from fer.data.faces import STYLES, draw_face, expression_for, random_identity
    from fer.data.labels import EMOTIONS
    from test_real_faces import iou
    style = TIGHT_STYLE if style_name == "tight" else STYLES[style_name]
    if style_name != "tight":                                   # --scale demo: half size
        style = replace(style, width=style.width // 2, height=style.height // 2)
    paths, faces = [], []
    for k in range(14):
        rng = np.random.default_rng([7, k])
        img, face = draw_face(random_identity(rng), expression_for(EMOTIONS[k % 7], 1.0, rng),
                              style, rng)
        if style_name == "tight":                               # the 48-px stand-in
            scale = 48 / img.shape[1]
            img = np.array(Image.fromarray(img).resize((48, 48), Image.Resampling.BOX))
            face = tuple(v * scale for v in face)
        paths.append(str(tmp_path / f"{k}.png"))
        Image.fromarray(img).save(paths[-1])
        faces.append(face)
    for pad in (0.0, 0.25):
        _, info = crop_faces(paths, section("crop", size=48, no_face="skip", pad=pad, workers=1),
                             True)
        kept = [(i["box"], f) for i, f in zip(info, faces) if i["detected"]]
        assert all(iou(box, face) >= 0.5 for box, face in kept), (pad, kept)
        if style_name != "tight" and pad == 0:
            assert len(kept) >= 10                                # measured 10-13 of 14
