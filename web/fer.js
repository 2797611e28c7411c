// Shared by the web page and the Node checks: preprocessing travels with the model as
// model.json's userDefinedMetadata.fer (written by the export stage), so no caller
// re-implements it.
export function ferMeta(model) {
  const meta = model.metadata && model.metadata.fer;
  if (!meta) throw new Error("model.json has no userDefinedMetadata.fer (not exported by fer)");
  return meta;
}

// uint8 RGB [N, S, S, 3] (0-255) -> float32 network input, per the model's metadata.
export function preprocess(tf, images, meta) {
  return tf.tidy(() => {
    const x = tf.cast(images, "float32");
    if (meta.preprocess === "scale01") return tf.div(x, 255);
    if (meta.preprocess === "caffe") {
      const bgr = tf.reverse(x, -1);
      return tf.sub(bgr, tf.tensor1d(meta.bgr_mean));
    }
    throw new Error(`unknown preprocess ${meta.preprocess}`);
  });
}

export function predict(tf, model, images, meta) {
  return tf.tidy(() => model.predict(preprocess(tf, images, meta)));
}

// Probabilities for every image (batches of 16) and batch-1 latencies in ms after
// 3 warm-up runs: the measurement both the Node runner and the browser bench use.
export async function measure(tf, model, images, meta, runs) {
  const [n, h, w] = images.shape;
  const probs = [];
  for (let i = 0; i < n; i += 16) {
    const batch = images.slice([i, 0, 0, 0], [Math.min(16, n - i), h, w, 3]);
    const out = predict(tf, model, batch, meta);
    probs.push(...(await out.array()));
    tf.dispose([batch, out]);
  }
  const one = images.slice([0, 0, 0, 0], [1, h, w, 3]);
  for (let i = 0; i < 3; i++) {
    const out = predict(tf, model, one, meta);
    await out.data();
    out.dispose();
  }
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    const out = predict(tf, model, one, meta);
    await out.data();
    ms.push(performance.now() - t);
    out.dispose();
  }
  one.dispose();
  return { probs, ms };
}
