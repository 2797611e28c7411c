// node web/check.mjs <job.json> <out>
// Runs web/fer.js's preprocessing, box and crop functions on the test's inputs, so
// tests/test_web_parity.py can compare them with fer/models.py and fer/crop.py. Jobs:
//   {op: "preprocess", backend, images: <uint8 file>, shape: [n, h, w, 3], modes: [...]}
//       -> out: float32, one block per mode
//   {op: "boxes", cases: [{box, shape: [H, W], margin, square}]}          -> out: JSON
//   {op: "detections", cases: [{box: {x, y, width, height}, width, height}]} -> out: JSON
//   {op: "crop", image: <uint8 RGB file>, width, height, cases: [{box, size}]}
//       -> out: uint8, one size x size x 3 block per case
import fs from "node:fs";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { cropResize, detectionBox, expandBox, preprocess } from "./fer.js";

const [jobPath, outPath] = process.argv.slice(2);
const job = JSON.parse(fs.readFileSync(jobPath, "utf8"));

if (job.op === "preprocess") {
  await tf.setBackend(job.backend);
  await tf.ready();
  const images = tf.tensor4d(new Uint8Array(fs.readFileSync(job.images)), job.shape, "int32");
  const blocks = [];
  for (const mode of job.modes) {
    const x = preprocess(tf, images, { preprocess: mode, bgr_mean: [103.939, 116.779, 123.68] });
    blocks.push(Buffer.from((await x.data()).buffer));
    x.dispose();
  }
  fs.writeFileSync(outPath, Buffer.concat(blocks));
  console.log(JSON.stringify({ backend: tf.getBackend() }));
} else if (job.op === "boxes") {
  fs.writeFileSync(outPath, JSON.stringify(job.cases.map((c) =>
    expandBox(c.box, c.shape, c.margin, c.square))));
} else if (job.op === "detections") {
  fs.writeFileSync(outPath, JSON.stringify(job.cases.map((c) =>
    detectionBox(c.box, c.width, c.height, c.tolerance))));
} else if (job.op === "crop") {
  const image = { data: new Uint8Array(fs.readFileSync(job.image)), width: job.width,
                  height: job.height };
  fs.writeFileSync(outPath, Buffer.concat(job.cases.map((c) =>
    Buffer.from(cropResize(image, c.box, c.size)))));
} else {
  throw new Error(`${jobPath}: unknown op ${job.op}`);
}
