// In-browser FER: face detection (face-api's SSD MobileNet, weights shipped in its npm
// package), crop as the training pipeline does (fer.js: detect_face's rounding, the
// model's crop.margin/crop.square, cv2's resize), classify with the exported TF.js model,
// draw box and probabilities.
import * as faceapi from "./node_modules/@vladmandic/face-api/dist/face-api.esm.js";
import { bestInFrame, cropResize, cropRules, expandBox, ferMeta, predict } from "./fer.js";

const tf = faceapi.tf;
const $ = (id) => document.getElementById(id);
const view = $("view"), ctx = view.getContext("2d");
let model, meta, rules;

function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

// Labels come from model.json: text nodes only, never parsed as HTML.
function drawBars(probs) {
  $("bars").replaceChildren(...meta.labels.map((label, i) => {
    const bar = document.createElement("div"), name = document.createElement("span");
    const fill = document.createElement("div"), value = document.createElement("b");
    bar.className = "bar";
    name.textContent = label;
    fill.style.width = `${(probs[i] * 16).toFixed(2)}rem`;
    value.textContent = `${(probs[i] * 100).toFixed(1)} %`;
    bar.append(name, fill, value);
    return bar;
  }));
}

// `frame`: a canvas holding the image at its own size.
async function classify(frame, name) {
  const w = frame.width, h = frame.height;
  const scale = Math.min(view.width / w, view.height / h);
  ctx.clearRect(0, 0, view.width, view.height);
  ctx.drawImage(frame, 0, 0, w * scale, h * scale);
  const found = await faceapi.detectAllFaces(frame,
    new faceapi.SsdMobilenetv1Options({ minConfidence: rules.confidence }));
  const best = bestInFrame(found, w, h, rules.frame_tolerance);
  const detection = best && best.box;
  if (!detection) {
    window.ferResult = { error: "no face" };
    status(`No face found in ${name}.`, true);
    $("bars").replaceChildren();
    return null;
  }
  const box = expandBox(detection, [h, w], rules.margin, rules.square);
  const image = frame.getContext("2d").getImageData(0, 0, w, h);
  const pixels = cropResize(image, box, meta.input_size);
  const input = tf.tensor4d(pixels, [1, meta.input_size, meta.input_size, 3], "int32");
  const out = predict(tf, model, input);
  const probs = Array.from(await out.data());
  tf.dispose([input, out]);
  const top = probs.indexOf(Math.max(...probs));
  const [x0, y0, x1, y1] = box;
  ctx.strokeStyle = "#00c853"; ctx.lineWidth = 3;
  ctx.strokeRect(x0 * scale, y0 * scale, (x1 - x0) * scale, (y1 - y0) * scale);
  ctx.fillStyle = "#00c853"; ctx.font = "16px sans-serif";
  ctx.fillText(meta.labels[top], x0 * scale, Math.max(14, y0 * scale - 4));
  drawBars(probs);
  status(`${name}: ${meta.labels[top]} (${(probs[top] * 100).toFixed(1)} %), backend ${tf.getBackend()}`);
  // exposed for the end-to-end test: the model's input pixels and both boxes
  window.ferResult = { label: meta.labels[top], probs, detection, box, backend: tf.getBackend(),
                       confidence: best.score, pixels: Array.from(pixels), rules };
  return probs;
}

function canvasOf(source, w, h) {
  const canvas = document.createElement("canvas");
  canvas.width = w; canvas.height = h;
  canvas.getContext("2d", { willReadFrequently: true }).drawImage(source, 0, 0);
  return canvas;
}

$("file").addEventListener("change", async (ev) => {
  const file = ev.target.files[0];
  if (!file) return;
  window.ferResult = null;
  let bitmap;
  try {
    // the file's own pixel values, as the pipeline decodes them (no colour management)
    bitmap = await createImageBitmap(file, { colorSpaceConversion: "none" });
  } catch (e) {
    window.ferResult = { error: "not an image" };
    status(`${file.name} is not an image this browser can read.`, true);
    $("bars").replaceChildren();
    return;
  }
  await classify(canvasOf(bitmap, bitmap.width, bitmap.height), file.name);
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
    await classify(canvasOf(video, video.videoWidth, video.videoHeight), "webcam");
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
  rules = cropRules(meta);
  status(`Ready: ${meta.model} trained on ${meta.train_set} (${meta.variant ?? "float32"} weights), ` +
         `backend ${tf.getBackend()}. Choose an image or the webcam.`);
  window.ferReady = true;
}
main().catch((e) => { status(`Could not start: ${e.message}`, true); window.ferReady = "error"; });
