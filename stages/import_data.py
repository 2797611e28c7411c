"""DVC stage import@<db>: parse one raw database into build/import/<db>/manifest.csv."""
import sys

from fer.atomic import atomic_dir, write_json
from fer.importers import import_database
from fer.params import load_params


def main(db: str) -> None:
    spec = dict(load_params()["data"]["databases"][db])
    result = import_database(spec.pop("kind"), spec.pop("path"), **spec)
    report = result.report()
    with atomic_dir(f"build/import/{db}") as tmp:
        result.manifest.to_csv(tmp / "manifest.csv", index=False)
    write_json(f"metrics/import/{db}.json", report)
    skipped = ", ".join(f"{n} {why}" for why, n in report["skipped"].items()) or "none"
    print(f"import {db}: {report['images']} images, {report['subjects']} subjects, "
          f"classes {report['classes']}; skipped: {skipped}")


if __name__ == "__main__":
    main(sys.argv[1])
