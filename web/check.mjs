// node web/check.mjs <job.json> <out>
// Runs web/fer.js's box and crop functions on the test's inputs, so
// tests/test_web_parity.py can compare them with fer/data/crop.py. Jobs:
//   {op: "boxes", cases: [{box, shape: [H, W], margin, square}]}          -> out: JSON
//   {op: "detections", cases: [{box: {x, y, width, height}, width, height}]} -> out: JSON
//   {op: "crop", image: <uint8 RGB file>, width, height, cases: [{box, size}]}
//       -> out: uint8, one size x size x 3 block per case
import fs from "node:fs";
import { cropResize, detectionBox, expandBox } from "./fer.js";

const [jobPath, outPath] = process.argv.slice(2);
const job = JSON.parse(fs.readFileSync(jobPath, "utf8"));

if (job.op === "boxes") {
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
