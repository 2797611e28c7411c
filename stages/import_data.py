"""DVC stage import@<db>: parse one raw database into build/import/<db>/manifest.csv
(plus images/*.png for databases stored as pixel tables, such as the FER2013 csv)."""
import sys

from PIL import Image

from fer.core.atomic import atomic_dir, write_json
from fer.data.importers import import_database
from fer.core.params import load_params


def main(db: str) -> None:
    databases = load_params()["data"]["databases"]
    spec = databases.get(db)              # reads data.databases.<db> only, as declared
    if spec is None:
        raise SystemExit(f"data.databases.{db}: no such database in params.yaml; known: "
                         f"{', '.join(databases)}")
    result = import_database(db, spec)
    report = result.report()
    manifest = result.manifest
    with atomic_dir(f"build/import/{db}") as tmp:
        if result.pixels is not None:
            (tmp / "images").mkdir()
            manifest = manifest.assign(path=[f"build/import/{db}/images/{i:06d}.png"
                                             for i in range(len(manifest))])
            for i, px in enumerate(result.pixels):
                Image.fromarray(px).save(tmp / "images" / f"{i:06d}.png")
        manifest.to_csv(tmp / "manifest.csv", index=False)
    write_json(f"metrics/import/{db}.json", report)
    skipped = ", ".join(f"{n} {why}" for why, n in report["skipped"].items()) or "none"
    print(f"import {db}: {report['images']} images, {report['subjects']} subjects "
          f"({report['train_only']} train-only images without a source subject), "
          f"classes {report['classes']}; skipped: {skipped}")


if __name__ == "__main__":
    main(sys.argv[1])
