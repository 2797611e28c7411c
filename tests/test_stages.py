"""Stage scripts run on a user's own layout: a FER2013 csv through import and crop."""
import json

import numpy as np
import pandas as pd
import yaml

from fer.data.dataset import load_dataset
from fer.data.labels import EMOTIONS
from fer.core.params import compose
from stages import crop, import_data


def test_fer2013_csv_through_import_and_crop(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    pd.DataFrame([{"emotion": i % 7, "pixels": " ".join(map(str, rng.integers(0, 256, 2304))),
                   "Usage": "Training" if i < 21 else "PublicTest"} for i in range(28)]
                 ).to_csv(tmp_path / "fer2013.csv", index=False)
    params = compose(["profile=demo"])         # a whole, valid configuration ...
    params["data"]["databases"]["fer"] = {"kind": "fer2013", "path": "fer2013.csv",
                                          "usage": "Training", "detect": False}
    params["crop"].update(size=80, no_face="fail", workers=1)    # ... with the user's db
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    import_data.main("fer")
    manifest = pd.read_csv("build/import/fer/manifest.csv")
    assert len(manifest) == 21 and (tmp_path / manifest["path"][0]).is_file()
    crop.main("fer")
    ds = load_dataset("build/crop/fer")
    assert ds.images.shape == (21, 80, 80, 3) and ds.images.dtype == np.uint8
    assert ds.manifest["label"].value_counts().to_dict() == {e: 3 for e in EMOTIONS}
    report = json.loads((tmp_path / "metrics/crop/fer.json").read_text())
    assert report["kept"] == 21                                   # detect: false keeps all
    assert report["detect"] is False and report["detection_rate"] is None   # not run
