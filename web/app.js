// In-browser FER: face detection (face-api's SSD MobileNet, weights shipped in its npm
// package), crop as the training pipeline does (the detected box, resized to the model's
// input size), classify with the exported TF.js model, draw box and probabilities.
import * as faceapi from "./node_modules/@vladmandic/face-api/dist/face-api.esm.js";
import { ferMeta, predict } from "./fer.js";

const tf = faceapi.tf;
const $ = (id) => document.getElementById(id);
const view = $("view"), ctx = view.getContext("2d");
let model, meta;

function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

function drawBars(probs) {
  $("bars").innerHTML = meta.labels.map((label, i) =>
    `<div class="bar"><span>${label}</span><div style="width:${(probs[i] * 16).toFixed(2)}rem"></div>` +
    `<b>${(probs[i] * 100).toFixed(1)} %</b></div>`).join("");
}

async function classify(source, name) {
  const w = source.videoWidth || source.width, h = source.videoHeight || source.height;
  const scale = Math.min(view.width / w, view.height / h);
  ctx.clearRect(0, 0, view.width, view.height);
  ctx.drawImage(source, 0, 0, w * scale, h * scale);
  const det = await faceapi.detectSingleFace(source,
    new faceapi.SsdMobilenetv1Options({ minConfidence: meta.face_confidence ?? 0.5 }));
  if (!det) {
    window.ferResult = { error: "no face" };
    status(`No face found in ${name}.`, true);
    $("bars").innerHTML = "";
    return null;
  }
  const b = det.box;
  const x = Math.max(0, Math.round(b.x)), y = Math.max(0, Math.round(b.y));
  const bw = Math.min(w - x, Math.round(b.width)), bh = Math.min(h - y, Math.round(b.height));
  const crop = document.createElement("canvas");
  crop.width = crop.height = meta.input_size;
  crop.getContext("2d").drawImage(source, x, y, bw, bh, 0, 0, meta.input_size, meta.input_size);
  const input = tf.tidy(() => tf.browser.fromPixels(crop).expandDims(0));
  const out = predict(tf, model, input, meta);
  const probs = Array.from(await out.data());
  const pixels = Array.from(await input.data());   // exposed for the end-to-end test
  tf.dispose([input, out]);
  const top = probs.indexOf(Math.max(...probs));
  ctx.strokeStyle = "#00c853"; ctx.lineWidth = 3;
  ctx.strokeRect(x * scale, y * scale, bw * scale, bh * scale);
  ctx.fillStyle = "#00c853"; ctx.font = "16px sans-serif";
  ctx.fillText(meta.labels[top], x * scale, Math.max(14, y * scale - 4));
  drawBars(probs);
  status(`${name}: ${meta.labels[top]} (${(probs[top] * 100).toFixed(1)} %), backend ${tf.getBackend()}`);
  window.ferResult = { label: meta.labels[top], probs, box: [x, y, x + bw, y + bh],
                       backend: tf.getBackend(), confidence: det.score, pixels };
  return probs;
}

$("file").addEventListener("change", async (ev) => {
  const file = ev.target.files[0];
  if (!file) return;
  window.ferResult = null;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch (e) {
    window.ferResult = { error: "not an image" };
    status(`${file.name} is not an image this browser can read.`, true);
    $("bars").innerHTML = "";
    return;
  }
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width; canvas.height = bitmap.height;
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  await classify(canvas, file.name);
});

$("webcam").addEventListener("click", async () => {
  const video = document.createElement("video");
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: true });
  } catch (e) {
    status(`Webcam unavailable: ${e.message}`, true);
    return;
  }
  await video.play();
  let frames = 0, t0 = performance.now();
  const loop = async () => {
    await classify(video, "webcam");
    frames++;
    const s = (performance.now() - t0) / 1000;
    if (s > 1) { $("info").textContent = `${(frames / s).toFixed(1)} frames/s`; frames = 0; t0 = performance.now(); }
    requestAnimationFrame(loop);
  };
  loop();
});

async function main() {
  const backend = new URLSearchParams(location.search).get("backend");
  if (backend) await tf.setBackend(backend);
  await tf.ready();
  await faceapi.nets.ssdMobilenetv1.loadFromUri("node_modules/@vladmandic/face-api/model");
  model = await tf.loadGraphModel("model/model.json");
  meta = ferMeta(model);
  status(`Ready: ${meta.model} trained on ${meta.train_set} (${meta.variant ?? "float32"} weights), ` +
         `backend ${tf.getBackend()}. Choose an image or the webcam.`);
  window.ferReady = true;
}
main().catch((e) => { status(`Could not start: ${e.message}`, true); window.ferReady = "error"; });
