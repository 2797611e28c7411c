"""DVC stage crop@<db>: detect, crop and resize every face -> build/crop/<db>/."""
import sys

import pandas as pd

from fer.core.atomic import atomic_file, write_json
from fer.data.crop import crop_faces, detection_summary
from fer.data.dataset import save_dataset
from fer.core.params import load_params
from fer.core.schema import Crop, database


def main(db: str) -> None:
    params = load_params()
    entry = database(db, params["data"]["databases"][db])
    # a database's own pad and square, where it sets them, override crop.pad and crop.square
    overrides = entry.model_dump(include={"pad", "square"}, exclude_none=True)
    crop = Crop.model_validate(params["crop"]).model_copy(update=overrides)
    manifest = pd.read_csv(f"build/import/{db}/manifest.csv", keep_default_na=False,
                           dtype={"subject": str, "source_subject": str})
    images, info = crop_faces(list(manifest["path"]), crop, entry.detect, desc=f"crop {db}")
    summary, warning = detection_summary(info, crop, entry.detect, db)
    info = pd.DataFrame(info)
    manifest = manifest.assign(confidence=info["confidence"], detected=info["detected"],
                               box=[" ".join(map(str, b)) if b else "" for b in info["box"]])
    kept = manifest[info["kept"].to_numpy()]
    saved = save_dataset(f"build/crop/{db}", images, kept, name=db)
    misses = manifest[(info["detected"] == False).to_numpy()]   # noqa: E712 (None: not run)
    with atomic_file(f"reports/crop/{db}_misses.csv") as f:
        misses[["path", "label", "subject"]].to_csv(f, index=False)
    write_json(f"metrics/crop/{db}.json", {**summary, "no_face_policy": crop.no_face,
                                           "kept": saved["images"], "size": crop.size})
    n = len(manifest)
    if not entry.detect:
        print(f"crop {db}: {n} images, detection not run (detect: false): centre square "
              f"crops resized to {crop.size}, kept {saved['images']}")
    else:
        print(f"crop {db}: {n} images, faces found in {summary['detection_rate']:.1%}, kept "
              f"{saved['images']} ({crop.no_face} policy for the {n - summary['detected']} "
              f"misses, listed in reports/crop/{db}_misses.csv)")
    if warning:
        print(f"WARNING: {warning}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
