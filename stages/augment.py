"""DVC stage augment: offline augmentation of cropped KDEF -> KDEF_DA_OL (paper 3.1)."""
from PIL import Image

from fer.atomic import atomic_file, write_json
from fer.augment import AugmentSpec, augment_images, describe, sample_grid
from fer.dataset import load_dataset, save_dataset
from fer.params import load_params


def main() -> None:
    opts = dict(load_params()["augment"])
    rows = opts.pop("grid_rows")
    spec = AugmentSpec(**opts)
    kdef = load_dataset("build/crop/kdef")
    copies, draws = augment_images(kdef.images, spec)
    manifest = kdef.manifest.loc[kdef.manifest.index.repeat(spec.copies)].reset_index(drop=True)
    manifest["database"] = "KDEF_DA_OL"
    manifest["source"] = [f"copy={i % spec.copies};{describe(d)}" for i, d in enumerate(draws)]
    manifest = manifest.drop(columns=["label_id"])
    summary = save_dataset("build/augment/KDEF_DA_OL", copies, manifest, name="KDEF_DA_OL")
    with atomic_file("reports/augment_grid.png", "wb") as f:
        Image.fromarray(sample_grid(kdef.images, copies, spec.copies, rows)).save(f, "PNG")
    write_json("metrics/augment.json", {"originals": len(kdef), "copies": summary["images"],
                                        "KDEF_OL": len(kdef) + summary["images"]})
    print(f"augment: {len(kdef)} KDEF images -> {summary['images']} copies (KDEF_DA_OL); "
          f"KDEF_OL = {len(kdef) + summary['images']}; grid: reports/augment_grid.png")


if __name__ == "__main__":
    main()
