// Measured in the browser: exported models, one after another in this page, on raw uint8
// images served as /data/<file>, with the TF.js backend asked for; batch-1 latencies
// after warm-up.
import * as faceapi from "./node_modules/@vladmandic/face-api/dist/face-api.esm.js";
import { ferMeta, measure } from "./fer.js";

const tf = faceapi.tf;   // the one tfjs 4.22 instance of the page

window.runBench = async (backend, n, size, runs, warmup, classify, file, modelUrls) => {
  if (backend === "wasm") {
    const setPaths = (tf.wasm && tf.wasm.setWasmPaths) || tf.setWasmPaths;
    setPaths("/node_modules/@tensorflow/tfjs-backend-wasm/dist/");
  }
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} unavailable`);
  await tf.ready();
  const raw = new Uint8Array(await (await fetch(`data/${file}`)).arrayBuffer());
  const images = tf.tensor4d(raw, [n, size, size, 3], "int32");
  const models = [];
  for (const url of modelUrls) {
    const model = await tf.loadGraphModel(url);
    const meta = ferMeta(model);
    models.push({ ...(await measure(tf, model, images, runs, warmup, classify)),
                  meta });
    model.dispose();
  }
  images.dispose();
  return { backend: tf.getBackend(), models };
};
window.benchReady = true;
