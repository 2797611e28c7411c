"""Epoch read time: one memory-mapped uint8 array (fer.data.dataset) vs decoding image files.

Writes N face images at 224x224 both as JPEG files and as a dataset directory, then
times one pass over each in batches of 32. Prints JSON; the ratio is what matters.
Usage: python bench/read_speed.py [--n 600]
"""
import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from fer.data.dataset import load_dataset, save_dataset
from fer.data.faces import STYLES, expression_for, random_identity, render_face
from fer.data.images import read_rgb
from fer.data.labels import EMOTIONS


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=600)
    p.add_argument("--size", type=int, default=224)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    base = [render_face(random_identity(rng), expression_for(e, 1.0, rng), STYLES["jaffe"], rng)
            for e in EMOTIONS]
    images = np.stack([np.asarray(Image.fromarray(base[i % 7]).resize((args.size,) * 2))
                       for i in range(args.n)])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = []
        for i, im in enumerate(images):
            paths.append(tmp / f"{i:05d}.jpg")
            Image.fromarray(im).save(paths[-1], quality=95)
        manifest = pd.DataFrame({"path": map(str, paths), "label": [EMOTIONS[i % 7] for i in
                                 range(args.n)], "subject": "s", "database": "bench",
                                 "source": ""})
        save_dataset(tmp / "ds", images, manifest)

        t = time.perf_counter()
        for i in range(0, args.n, 32):
            batch = np.stack([read_rgb(p) for p in paths[i:i + 32]])
        decode_s = time.perf_counter() - t

        t = time.perf_counter()
        ds = load_dataset(tmp / "ds")
        for i in range(0, args.n, 32):
            batch = np.array(ds.images[i:i + 32])
        mmap_s = time.perf_counter() - t
        assert batch.shape[1:] == (args.size, args.size, 3)
    print(json.dumps({"images": args.n, "size": args.size,
                      "decode_files_s": round(decode_s, 4), "memmap_npy_s": round(mmap_s, 4),
                      "speedup": round(decode_s / mmap_s, 1),
                      "decode_images_per_s": round(args.n / decode_s),
                      "memmap_images_per_s": round(args.n / mmap_s)}, indent=2))


if __name__ == "__main__":
    main()
