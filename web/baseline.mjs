// node baseline.mjs <images.u8> <n> <size> <out.json> [runs]
// Reference model: face-api's expression network (weights shipped in the npm package
// @vladmandic/face-api, model/face_expression_model*), run by TF.js in Node on the WASM
// backend (no tfjs-node). Input: the project's own uint8 RGB face crops [N, S, S, 3].
// Preprocessing is face-api's own (FaceExpressionNet.predictExpressions): pad to square,
// bilinear resize to 112x112, subtract mean RGB [122.782, 117.001, 104.298], divide by 255.
// Writes the probabilities in face-api's label order, batch-1 latencies (ms, after 3
// warm-up runs), the labels and the weights' size in bytes.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const faceapi = require("@vladmandic/face-api/dist/face-api.node-wasm.js");
const tf = faceapi.tf;

const [imagesPath, n, size, outPath, runs = "30"] = process.argv.slice(2);
const MODEL_DIR = path.join(path.dirname(require.resolve("@vladmandic/face-api/package.json")),
  "model");

await tf.setBackend("wasm");
await tf.ready();
const net = faceapi.nets.faceExpressionNet;
await net.loadFromDisk(MODEL_DIR);
const N = Number(n), S = Number(size);
const raw = new Uint8Array(fs.readFileSync(imagesPath));
if (raw.length !== N * S * S * 3) throw new Error(`${imagesPath}: ${raw.length} bytes, expected ${N}x${S}x${S}x3`);

const one = (i) => tf.tensor3d(raw.subarray(i * S * S * 3, (i + 1) * S * S * 3), [S, S, 3], "int32");
async function probsOf(i) {
  const x = one(i);
  const e = await net.predictExpressions(x);
  x.dispose();
  return faceapi.FACE_EXPRESSION_LABELS.map((l) => e[l]);
}
const probs = [];
for (let i = 0; i < N; i++) probs.push(await probsOf(i));
for (let i = 0; i < 3; i++) await probsOf(0);
const ms = [];
for (let i = 0; i < Number(runs); i++) {
  const t = performance.now();
  await probsOf(0);
  ms.push(performance.now() - t);
}
const weightBytes = fs.readdirSync(MODEL_DIR).filter((f) => f.startsWith("face_expression_model"))
  .reduce((s, f) => s + fs.statSync(path.join(MODEL_DIR, f)).size, 0);
const version = require("@vladmandic/face-api/package.json").version;
fs.writeFileSync(outPath, JSON.stringify({
  backend: tf.getBackend(), labels: [...faceapi.FACE_EXPRESSION_LABELS], probs, ms,
  weight_bytes: weightBytes, package: `@vladmandic/face-api@${version}`,
}));
