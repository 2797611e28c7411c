// node run_model.mjs <model_dir> <images.u8> <n> <size> <out.json> [backend] [runs]
// Runs a fer TF.js graph model on raw uint8 RGB images with TF.js itself (WASM backend
// by default), writes the probabilities and per-image batch-1 latencies as JSON.
import fs from "node:fs";
import path from "node:path";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { ferMeta, measure } from "./fer.js";

const [dir, imagesPath, n, size, outPath, backend = "wasm", runs = "30"] = process.argv.slice(2);

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
const model = await loadFromDisk(dir);
const meta = ferMeta(model);
const N = Number(n), S = Number(size);
const raw = new Uint8Array(fs.readFileSync(imagesPath));
const images = tf.tensor4d(raw, [N, S, S, 3], "int32");
const { probs, ms } = await measure(tf, model, images, meta, Number(runs));
fs.writeFileSync(outPath, JSON.stringify({ backend: tf.getBackend(), probs, ms, meta }));
