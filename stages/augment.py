"""DVC stage augment: offline augmentation (paper 3.1) of one database's cropped faces
(`augment.source`, KDEF) -> the part `augment.part` (kdef_da_ol = KDEF_DA_OL)."""
from PIL import Image

from fer.core.atomic import atomic_file, write_json
from fer.data.augment import augment_images, describe, sample_grid
from fer.data.dataset import load_dataset, save_dataset
from fer.data.layout import CROP_DIR, DERIVED_DIR
from fer.core.params import load_params
from fer.core.schema import Augment


def main() -> None:
    augment = Augment.model_validate(load_params()["augment"])
    source, part, n = augment.source, augment.part, augment.copies
    kdef = load_dataset(CROP_DIR / source)
    copies, draws = augment_images(kdef.images, augment)
    manifest = kdef.manifest.loc[kdef.manifest.index.repeat(n)].reset_index(drop=True).assign(
        database=part.upper(), source=[f"copy={i % n};{describe(d)}" for i, d in enumerate(draws)])
    summary = save_dataset(DERIVED_DIR / part, copies, manifest, name=part.upper())
    with atomic_file("reports/augment_grid.png", "wb") as f:
        Image.fromarray(sample_grid(kdef.images, copies, n, augment.grid_rows)).save(f, "PNG")
    write_json("metrics/augment.json", {"source": source, "part": part, "originals": len(kdef),
                                        "copies": summary["images"],
                                        "originals_and_copies": len(kdef) + summary["images"]})
    print(f"augment: {len(kdef)} {source} images -> {summary['images']} copies ({part}); "
          f"with the originals {len(kdef) + summary['images']}; grid: reports/augment_grid.png")


if __name__ == "__main__":
    main()
