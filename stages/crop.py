"""DVC stage crop@<db>: detect, crop and resize every face -> build/crop/<db>/."""
import sys

import pandas as pd

from fer.atomic import atomic_file, write_json
from fer.crop import CropSpec, crop_faces
from fer.dataset import save_dataset
from fer.params import load_params


def main(db: str) -> None:
    params = load_params()
    opts = dict(params["crop"])
    workers = opts.pop("workers")
    spec = CropSpec(**opts, detect=params["data"]["databases"][db].get("detect", True))
    manifest = pd.read_csv(f"build/import/{db}/manifest.csv", keep_default_na=False,
                           dtype={"subject": str})
    images, info = crop_faces(list(manifest["path"]), spec, workers=workers, desc=f"crop {db}")
    info = pd.DataFrame(info)
    manifest = manifest.assign(confidence=info["confidence"], detected=info["detected"],
                               box=[" ".join(map(str, b)) if b else "" for b in info["box"]])
    kept = manifest[info["kept"].to_numpy()]
    summary = save_dataset(f"build/crop/{db}", images, kept, name=db)
    misses = manifest[~info["detected"].to_numpy()]
    with atomic_file(f"reports/crop/{db}_misses.csv") as f:
        misses[["path", "label", "subject"]].to_csv(f, index=False)
    n = len(manifest)
    rate = float(info["detected"].mean()) if n else 0.0
    write_json(f"metrics/crop/{db}.json", {
        "images": n, "detected": int(info["detected"].sum()), "detection_rate": round(rate, 4),
        "no_face_policy": spec.no_face, "kept": summary["images"], "size": spec.size})
    print(f"crop {db}: {n} images, faces found in {rate:.1%}, kept {summary['images']} "
          f"({spec.no_face} policy for the {n - int(info['detected'].sum())} misses, "
          f"listed in reports/crop/{db}_misses.csv)")


if __name__ == "__main__":
    main(sys.argv[1])
