// node web/serve.mjs [--model build/tfjs/uint8] [--port 8000]
// Serves the web demo on 127.0.0.1 only: web/ itself and the exported model as /model/.
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

const WEB = path.dirname(fileURLToPath(import.meta.url));
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript",
  ".json": "application/json", ".bin": "application/octet-stream", ".wasm": "application/wasm",
  ".png": "image/png" };

// /model/* -> modelDir, /data/images.u8 -> dataDir/<that file> (bench), else web/.
export function serve(modelDir, port = 0, dataDir = null) {
  const mounts = { "/model/": path.resolve(modelDir) };
  if (dataDir) mounts["/data/"] = path.resolve(dataDir);
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const mount = Object.keys(mounts).find((m) => url.startsWith(m));
    const base = mount ? mounts[mount] : WEB;
    const file = mount ? path.join(base, url.slice(mount.length))
                       : path.join(WEB, url === "/" ? "index.html" : url);
    if (!file.startsWith(base) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404); res.end("not found"); return;
    }
    res.writeHead(200, { "Content-Type": TYPES[path.extname(file)] || "application/octet-stream" });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (k, d) => (args.includes(k) ? args[args.indexOf(k) + 1] : d);
  const server = await serve(opt("--model", "build/tfjs/uint8"), Number(opt("--port", "8000")));
  console.log(`FER demo on http://127.0.0.1:${server.address().port}/ (Ctrl-C to stop)`);
}
