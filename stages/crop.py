"""DVC stage crop@<db>: detect, crop and resize every face -> build/crop/<db>/."""
import sys

import pandas as pd

from fer.core.atomic import atomic_file, write_json
from fer.data.crop import CropSpec, crop_faces, detection_summary
from fer.data.dataset import save_dataset
from fer.core.params import load_params
from fer.core.schema import database


def main(db: str) -> None:
    params = load_params()
    opts = dict(params["crop"])
    workers = opts.pop("workers")
    entry = database(db, params["data"]["databases"][db])
    for key in ("pad", "square"):               # per-database overrides of crop.<key>
        if getattr(entry, key) is not None:
            opts[key] = getattr(entry, key)
    spec = CropSpec(**opts, detect=entry.detect)
    manifest = pd.read_csv(f"build/import/{db}/manifest.csv", keep_default_na=False,
                           dtype={"subject": str, "source_subject": str})
    images, info = crop_faces(list(manifest["path"]), spec, workers=workers, desc=f"crop {db}")
    summary, warning = detection_summary(info, spec, db)
    info = pd.DataFrame(info)
    manifest = manifest.assign(confidence=info["confidence"], detected=info["detected"],
                               box=[" ".join(map(str, b)) if b else "" for b in info["box"]])
    kept = manifest[info["kept"].to_numpy()]
    saved = save_dataset(f"build/crop/{db}", images, kept, name=db)
    misses = manifest[(info["detected"] == False).to_numpy()]   # noqa: E712 (None: not run)
    with atomic_file(f"reports/crop/{db}_misses.csv") as f:
        misses[["path", "label", "subject"]].to_csv(f, index=False)
    write_json(f"metrics/crop/{db}.json", {**summary, "no_face_policy": spec.no_face,
                                           "kept": saved["images"], "size": spec.size})
    n = len(manifest)
    if not spec.detect:
        print(f"crop {db}: {n} images, detection not run (detect: false): centre square "
              f"crops resized to {spec.size}, kept {saved['images']}")
    else:
        print(f"crop {db}: {n} images, faces found in {summary['detection_rate']:.1%}, kept "
              f"{saved['images']} ({spec.no_face} policy for the {n - summary['detected']} "
              f"misses, listed in reports/crop/{db}_misses.csv)")
    if warning:
        print(f"WARNING: {warning}", file=sys.stderr)

if __name__ == "__main__":
    main(sys.argv[1])
