"""DVC stage report: reports/index.html, one self-contained page with every table
(2, 3, 6, 7, 8, 9, 10, claims, reference models), the confusion matrices, training
curves, augmentation grid, GAN sample grids and KID curves, dataset counts and crop
detection rates, each with the stage, params and hashes it came from."""
from fer.atomic import atomic_file
from fer.html_report import build
from fer.params import load_params


def main() -> None:
    page = build(load_params())
    with atomic_file("reports/index.html") as f:
        f.write(page)
    print(f"reports/index.html: {len(page) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
