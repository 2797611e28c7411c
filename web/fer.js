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
