// node run_model.mjs <images.u8> <n> <size> <out.json> <backend> <runs> <warmup> <classify 1|0>
//                    <model_dir>...
// Runs fer TF.js graph models, one after another in this one process, on raw uint8 RGB
// images with TF.js itself (e.g. the WASM backend; no native tfjs-node binary); writes
// each model's probabilities (null with classify 0: latency only) and batch-1 latencies
// as JSON: {backend, models: [...]}.
import fs from "node:fs";
import path from "node:path";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { ferMeta, measure, runnerArgs } from "./fer.js";

const [imagesPath, n, size, outPath, backend, runs, warmup, classify, ...dirs] =
  runnerArgs(process.argv);

function loadFromDisk(dir) {
  const json = JSON.parse(fs.readFileSync(path.join(dir, "model.json"), "utf8"));
  const specs = [], buffers = [];
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) buffers.push(fs.readFileSync(path.join(dir, p)));
  }
  const all = Buffer.concat(buffers);
  return tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: json.modelTopology, weightSpecs: specs,
    weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
    format: json.format, generatedBy: json.generatedBy, convertedBy: json.convertedBy,
    signature: json.signature, userDefinedMetadata: json.userDefinedMetadata,
  }));
}

await tf.setBackend(backend);
await tf.ready();
const N = Number(n), S = Number(size);
const raw = new Uint8Array(fs.readFileSync(imagesPath));
const images = tf.tensor4d(raw, [N, S, S, 3], "int32");
const models = [];
for (const dir of dirs) {
  const model = await loadFromDisk(dir);
  const meta = ferMeta(model);
  models.push({ ...(await measure(tf, model, images, Number(runs), Number(warmup),
                                 classify === "1")),
                meta });
  model.dispose();
}
fs.writeFileSync(outPath, JSON.stringify({ backend: tf.getBackend(), models }));
