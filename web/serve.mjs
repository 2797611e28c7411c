// node web/serve.mjs --model build/tfjs/<model>/float16 [--port 8000]   (make web picks it)
// Serves the web demo on 127.0.0.1 only: web/ itself and the exported model as /model/.
// A malformed URL gets 400, a path outside the served folders 404, a read error 500
// (404 if the file vanished); the server keeps serving after each.
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

const WEB = path.dirname(fileURLToPath(import.meta.url));
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript",
  ".json": "application/json", ".bin": "application/octet-stream", ".wasm": "application/wasm",
  ".png": "image/png" };
const GONE = new Set(["ENOENT", "ENOTDIR", "EISDIR", "ELOOP"]);

// The file `rel` names inside `base`; null for `base` itself or a path that would leave it (`..`
// segments, an absolute path). Lexical on purpose: a symlink inside a served folder (a DVC cache
// link) is followed.
export function confine(base, rel) {
  const file = path.join(base, rel);
  const inside = path.relative(base, file);
  const outside = inside === ".." || inside.startsWith(`..${path.sep}`) || path.isAbsolute(inside);
  return inside === "" || outside ? null : file;
}

function answer(res, code, text) {
  res.writeHead(code, { "Content-Type": "text/plain" });
  res.end(text);
}

// Streams `file`. The status line waits for the first chunk, so an error on opening or on
// the first read still gets its own status; a later error cuts the connection (the client
// sees an unterminated chunked body, never a silently short file).
function sendFile(req, res, file) {
  fs.stat(file, (err, st) => {
    if (err && !GONE.has(err.code)) { answer(res, 500, "read error"); return; }
    if (err || !st.isFile()) { answer(res, 404, "not found"); return; }
    const stream = fs.createReadStream(file);
    const type = TYPES[path.extname(file)] || "application/octet-stream";
    const start = () => { if (!res.headersSent) res.writeHead(200, { "Content-Type": type }); };
    res.on("close", () => stream.destroy());
    stream.on("error", (e) => {
      console.error(`${req.url}: ${e.message}`);
      if (res.headersSent) res.destroy();
      else if (GONE.has(e.code)) answer(res, 404, "not found");
      else answer(res, 500, "read error");
    });
    stream.on("data", (chunk) => {
      start();
      if (!res.write(chunk)) { stream.pause(); res.once("drain", () => stream.resume()); }
    });
    stream.on("end", () => { start(); res.end(); });
  });
}

// /model/* -> modelDir, /data/images.u8 -> dataDir/<that file> (bench), each key of
// `extra` ("/model0/") -> its folder, else web/.
export function serve(modelDir, port = 0, dataDir = null, extra = {}) {
  const mounts = { "/model/": path.resolve(modelDir) };
  if (dataDir) mounts["/data/"] = path.resolve(dataDir);
  for (const [url, dir] of Object.entries(extra)) mounts[url] = path.resolve(dir);
  const server = http.createServer((req, res) => {
    let url;
    try {
      url = decodeURIComponent(new URL(req.url, "http://x").pathname);
    } catch {
      answer(res, 400, "malformed URL"); return;
    }
    if (url.includes("\0")) { answer(res, 400, "malformed URL"); return; }
    const mount = Object.keys(mounts).find((m) => url.startsWith(m));
    const file = mount ? confine(mounts[mount], url.slice(mount.length))
                       : confine(WEB, url === "/" ? "index.html" : url);
    if (!file) { answer(res, 404, "not found"); return; }
    sendFile(req, res, file);
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (k, d) => (args.includes(k) ? args[args.indexOf(k) + 1] : d);
  if (!opt("--model")) {
    console.error("usage: node web/serve.mjs --model build/tfjs/<model>/<variant> [--port 8000]");
    process.exit(2);
  }
  const server = await serve(opt("--model"), Number(opt("--port", "8000")));
  console.log(`FER demo on http://127.0.0.1:${server.address().port}/ (Ctrl-C to stop)`);
}
