// Shared by the web page and the Node checks: the model's metadata (labels, crop rules)
// travels with it as model.json's userDefinedMetadata.fer (written by the export stage).
// The model normalises its input itself (fer/train/backbones.py Normalize): it takes 0-255 pixels.
export function ferMeta(model) {
  const meta = model.metadata && model.metadata.fer;
  if (!meta) throw new Error("model.json has no userDefinedMetadata.fer (not exported by fer)");
  return meta;
}

// The pipeline's crop rules (model.json userDefinedMetadata.fer.data.crop, from the training
// params); exports made before they travelled there were cropped with these defaults.
export function cropRules(meta) {
  // (those exports' pipeline clipped every box: no frame tolerance)
  return { margin: 0, square: false, confidence: 0.5, frame_tolerance: Infinity,
           ...(meta.crop || {}) };
}

// Python's round(): halves go to the even neighbour.
export function roundHalfEven(x) {
  const f = Math.floor(x), d = x - f;
  if (d !== 0.5) return d < 0.5 ? f : f + 1;
  return f % 2 === 0 ? f : f + 1;
}

// A detector's box {x, y, width, height} (pixels) -> integer [x0, y0, x1, y1] clipped to
// the image, or null for a box under 8 px or one with an edge further outside the image
// than `tolerance` x its side (rejected, never clipped), as fer/data/crop.py in_frame() does.
export function detectionBox(box, width, height, tolerance = 0.1) {
  let x0 = roundHalfEven(box.x), y0 = roundHalfEven(box.y);
  let x1 = roundHalfEven(box.x + box.width), y1 = roundHalfEven(box.y + box.height);
  const w = x1 - x0, h = y1 - y0;
  if (w < 8 || h < 8) return null;
  if (Math.max(-x0, x1 - width) > tolerance * w || Math.max(-y0, y1 - height) > tolerance * h)
    return null;
  x0 = Math.max(0, x0); y0 = Math.max(0, y0); x1 = Math.min(width, x1); y1 = Math.min(height, y1);
  return x1 - x0 < 8 || y1 - y0 < 8 ? null : [x0, y0, x1, y1];
}

// The highest-scoring detection ({box, score} list) whose box detectionBox() accepts, as
// fer/data/crop.py find_face() chooses: {box: [x0, y0, x1, y1], score}, or null when none does.
export function bestInFrame(detections, width, height, tolerance = 0.1) {
  const ranked = [...detections].sort((a, b) => b.score - a.score);
  for (const d of ranked) {
    const box = detectionBox(d.box, width, height, tolerance);
    if (box) return { box, score: d.score };
  }
  return null;
}

// [lo, hi) of length `size` around `centre` within [0, limit]: clipped, or (keepSize)
// shifted inside so the length is kept -- fer/data/crop.py _span().
function span(centre, size, limit, keepSize) {
  if (keepSize) {
    const n = roundHalfEven(size);
    const lo = Math.min(Math.max(roundHalfEven(centre - n / 2), 0), limit - n);
    return [lo, lo + n];
  }
  return [roundHalfEven(Math.max(0, centre - size / 2)),
          roundHalfEven(Math.min(limit, centre + size / 2))];
}

// fer/data/crop.py expand_box(): enlarged by `margin` of its size on each side and clipped to
// the image [height, width]; square: the longer side (times the margin, capped at the
// image's shorter side), shifted inside the image; same operations in the same order.
export function expandBox([x0, y0, x1, y1], [H, W], margin, square) {
  const w = x1 - x0, h = y1 - y0;
  const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
  if (square) {
    const side = Math.min(Math.max(w, h) * (1 + 2 * margin), H, W);
    const [nx0, nx1] = span(cx, side, W, true), [ny0, ny1] = span(cy, side, H, true);
    return [nx0, ny0, nx1, ny1];
  }
  const [nx0, nx1] = span(cx, w * (1 + 2 * margin), W, false);
  const [ny0, ny1] = span(cy, h * (1 + 2 * margin), H, false);
  return [nx0, ny0, nx1, ny1];
}

// fer/data/crop.py crop_resize(): the box of an RGB or RGBA image {data, width, height} resized
// to size x size RGB as cv2.resize does, INTER_AREA when both sides shrink, else
// INTER_CUBIC, with cv2's own arithmetic: float32 sums, integer cubic weights (x 2048),
// replicated border, round half to even.
export function cropResize(image, [x0, y0, x1, y1], size) {
  const w = x1 - x0, h = y1 - y0;
  const ch = image.data.length / (image.width * image.height);
  const area = Math.min(w, h) > size;
  if (area && integral(w, size) && integral(h, size)) {
    return blockMean(image, [x0, y0], w / size, h / size, size);
  }
  const taps = area ? areaTaps : cubicTaps, vertical = area ? areaSum : cubicSum;
  const tx = taps(w, size), ty = taps(h, size), rows = new Map();
  const xs = tx.flatMap((t, dx) => t.map(([sx, wx]) => [dx * 3, sx * ch, wx]));
  const xd = Int32Array.from(xs, (t) => t[0]), xo = Int32Array.from(xs, (t) => t[1]);
  const xw = Float32Array.from(xs, (t) => t[2]);
  const horizontal = (sy) => {                  // one source row, resized in x
    if (rows.has(sy)) return rows.get(sy);
    const line = ((y0 + sy) * image.width + x0) * ch, row = new Float32Array(size * 3);
    for (let k = 0; k < xw.length; k++) {       // float32 stores round each sum as cv2 does
      const d = xd[k], p = line + xo[k], wx = xw[k];
      row[d] += Math.fround(image.data[p] * wx);
      row[d + 1] += Math.fround(image.data[p + 1] * wx);
      row[d + 2] += Math.fround(image.data[p + 2] * wx);
    }
    rows.set(sy, row);
    return row;
  };
  const out = new Uint8Array(size * size * 3);
  for (let dy = 0; dy < size; dy++) {
    const src = ty[dy].map(([sy]) => horizontal(sy)), wy = ty[dy].map(([, v]) => v);
    vertical(src, wy, out.subarray(dy * size * 3, (dy + 1) * size * 3));
  }
  return out;
}

// cv2's vertical area step: float32 running sum of weight x row, rounded.
function areaSum(rows, weights, out) {
  const f = Math.fround;
  for (let i = 0; i < out.length; i++) {
    let sum = f(weights[0] * rows[0][i]);
    for (let k = 1; k < rows.length; k++) sum = f(sum + f(weights[k] * rows[k][i]));
    out[i] = Math.min(255, roundHalfEven(sum));
  }
}

// cv2's vectorised vertical cubic step: S0*b0 + (S1*b1 + (S2*b2 + S3*b3)) in float32,
// b = weight / 2048^2, rounded and saturated.
function cubicSum([s0, s1, s2, s3], weights, out) {
  const f = Math.fround, [b0, b1, b2, b3] = weights.map((v) => f(v / 2 ** 22));
  for (let i = 0; i < out.length; i++) {
    const v = f(f(s0[i] * b0) + f(f(s1[i] * b1) + f(f(s2[i] * b2) + f(s3[i] * b3))));
    out[i] = Math.min(255, Math.max(0, roundHalfEven(v)));
  }
}

// cv2 takes its fast area path when both factors are integers (1 / (dst / src) within
// DBL_EPSILON of one); for 2 x 2 blocks it rounds halves up, otherwise sum x float32(1/n).
function integral(src, dst) {
  const scale = 1 / (dst / src);
  return Math.abs(scale - Math.round(scale)) < Number.EPSILON;
}

function blockMean(image, [x0, y0], kx, ky, size) {
  const ch = image.data.length / (image.width * image.height);
  const out = new Uint8Array(size * size * 3);
  const inv = Math.fround(1 / (kx * ky));
  for (let dy = 0; dy < size; dy++) {
    for (let dx = 0; dx < size; dx++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let j = 0; j < ky; j++) {
          for (let i = 0; i < kx; i++) {
            sum += image.data[((y0 + dy * ky + j) * image.width + x0 + dx * kx + i) * ch + c];
          }
        }
        out[(dy * size + dx) * 3 + c] = kx === 2 && ky === 2 ? (sum + 2) >> 2
          : Math.min(255, roundHalfEven(Math.fround(sum * inv)));
      }
    }
  }
  return out;
}

// Per output index, [source index, float32 weight] pairs of cv2's area decimation.
function areaTaps(src, dst) {
  const scale = 1 / (dst / src), taps = [];
  for (let d = 0; d < dst; d++) {
    const f1 = d * scale, f2 = f1 + scale, cell = Math.min(scale, src - f1);
    const s2 = Math.min(Math.floor(f2), src - 1), s1 = Math.min(Math.ceil(f1), s2);
    const t = [];
    if (s1 - f1 > 1e-3) t.push([s1 - 1, Math.fround((s1 - f1) / cell)]);
    for (let s = s1; s < s2; s++) t.push([s, Math.fround(1 / cell)]);
    if (f2 - s2 > 1e-3) t.push([s2, Math.fround(Math.min(f2 - s2, 1, cell) / cell)]);
    taps.push(t);
  }
  return taps;
}

// Per output index, 4 [source index, integer weight] pairs of cv2's bicubic (A = -0.75,
// half-pixel centres, coefficients in float32 then rounded to 1/2048).
function cubicTaps(src, dst) {
  const f = Math.fround, A = -0.75, scale = 1 / (dst / src), taps = [];
  for (let d = 0; d < dst; d++) {
    let x = f((d + 0.5) * scale - 0.5);
    const s = Math.floor(x);
    x = f(x - s);
    const x1 = f(x + 1), y = f(1 - x);
    const c0 = f(f(f(f(f(f(A * x1) - f(5 * A)) * x1) + f(8 * A)) * x1) - f(4 * A));
    const c1 = f(f(f(f(f((A + 2) * x) - (A + 3)) * x) * x) + 1);
    const c2 = f(f(f(f(f((A + 2) * y) - (A + 3)) * y) * y) + 1);
    const c3 = f(f(f(1 - c0) - c1) - c2);
    taps.push([c0, c1, c2, c3].map((c, k) =>
      [Math.min(src - 1, Math.max(0, s - 1 + k)), roundHalfEven(c * 2048)]));
  }
  return taps;
}

// uint8 RGB [N, S, S, 3] (0-255) -> class probabilities [N, 7]
export function predict(tf, model, images) {
  return tf.tidy(() => model.predict(tf.cast(images, "float32")));
}

// The command line both runners (run_model.mjs, bench.mjs) share, checked:
// <images.u8> <n> <size> <out.json> <backend> <runs> <warmup> <classify 1|0> <model_dir>...
export function runnerArgs(argv) {
  const args = argv.slice(2);
  if (!["0", "1"].includes(args[7]) || args.length < 9) {
    const script = argv[1].split("/").pop();
    throw new Error(`usage: ${script} <images.u8> <n> <size> <out.json> `
                    + "<backend> <runs> <warmup> <classify 1|0> <model_dir>...");
  }
  return args;
}

// Probabilities for every image (batches of 16; none when `classify` is false, for a
// latency-only runtime) and batch-1 latencies in ms of the first image after `warmup`
// batch-1 runs (3 by default; how many ran is returned): the measurement both the Node
// runner and the browser bench use.
export async function measure(tf, model, images, runs, warmup = 3, classify = true) {
  const [n, h, w] = images.shape;
  const probs = classify ? [] : null;
  for (let i = 0; classify && i < n; i += 16) {
    const batch = images.slice([i, 0, 0, 0], [Math.min(16, n - i), h, w, 3]);
    const out = predict(tf, model, batch);
    probs.push(...(await out.array()));
    tf.dispose([batch, out]);
  }
  const one = images.slice([0, 0, 0, 0], [1, h, w, 3]);
  let warmed = 0;
  for (; warmed < warmup; warmed++) {
    const out = predict(tf, model, one);
    await out.data();
    out.dispose();
  }
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    const out = predict(tf, model, one);
    await out.data();
    ms.push(performance.now() - t);
    out.dispose();
  }
  one.dispose();
  return { probs, ms, warmup: warmed };
}
