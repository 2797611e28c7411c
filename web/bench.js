// Measured in the browser: the exported model on raw uint8 images served as /data/images.u8,
// with the TF.js backend asked for; batch-1 latencies after warm-up.
import * as faceapi from "./node_modules/@vladmandic/face-api/dist/face-api.esm.js";
import { ferMeta, measure } from "./fer.js";

const tf = faceapi.tf;   // the one tfjs 4.22 instance of the page

window.runBench = async (backend, n, size, runs, file = "images.u8") => {
  if (backend === "wasm") {
    const setPaths = (tf.wasm && tf.wasm.setWasmPaths) || tf.setWasmPaths;
    setPaths("/node_modules/@tensorflow/tfjs-backend-wasm/dist/");
  }
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} unavailable`);
  await tf.ready();
  const model = await tf.loadGraphModel("model/model.json");
  const meta = ferMeta(model);
  const raw = new Uint8Array(await (await fetch(`data/${file}`)).arrayBuffer());
  const images = tf.tensor4d(raw, [n, size, size, 3], "int32");
  const { probs, ms } = await measure(tf, model, images, meta, runs);
  return { backend: tf.getBackend(), probs, ms, meta };
};
window.benchReady = true;
