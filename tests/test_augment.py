import numpy as np
import pytest

from fer.data.augment import Draw, apply, augment_images, draw, sample_grid
from sections import section


def _images(n=3, s=32):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, s, s, 3), dtype=np.uint8)


def test_paper_ranges_and_reproducibility():
    augment = section("augment")                          # the paper's ranges, 5 copies
    draws = [draw(augment, i, k) for i in range(200) for k in range(5)]
    angles = np.array([d.angle_deg for d in draws])
    assert np.abs(angles).max() <= 36.0 and np.abs(angles).max() > 30
    assert all(0.9 <= d.zoom <= 1.1 and 0.8 <= d.height <= 1.2 and 0.8 <= d.width <= 1.2
               and 0.8 <= d.contrast <= 1.2 for d in draws)
    assert 0.4 < np.mean([d.flip for d in draws]) < 0.6
    imgs = _images()
    a, _ = augment_images(imgs, augment)
    b, _ = augment_images(imgs, augment)
    c, _ = augment_images(imgs, section("augment", seed=7))
    assert a.shape == (15, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # a copy depends only on (seed, image index, copy index): a restart gives the same
    part, _ = augment_images(imgs[:1], augment)
    assert np.array_equal(part, a[:5])


def test_identity_flip_and_contrast():
    img = _images(1)[0]
    ident = Draw(0.0, 1.0, False, 1.0, 1.0, 1.0)
    assert np.array_equal(apply(img, ident), img)
    flipped = apply(img, Draw(0.0, 1.0, True, 1.0, 1.0, 1.0))
    assert np.array_equal(flipped, img[:, ::-1])
    flat = np.full((8, 8, 3), 100, np.uint8)
    flat[0, 0] = 200
    lo = apply(flat, Draw(0.0, 1.0, False, 1.0, 1.0, 0.5)).astype(float)
    mean = flat.reshape(-1, 3).mean(0)
    assert np.allclose(lo[0, 0], np.round(mean + 0.5 * (200 - mean)))


def test_grid_and_bad_spec():
    imgs = _images(2, 16)
    copies, _ = augment_images(imgs, section("augment", copies=5))
    grid = sample_grid(imgs, copies, 5, rows=2)
    assert grid.shape == (2 * 20 + 4, 6 * 20 + 4, 3)
    assert np.array_equal(grid[4:20, 4:20], imgs[0])
    with pytest.raises(ValueError, match="rotation"):
        section("augment", rotation=1.5)
