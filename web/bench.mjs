// node web/bench.mjs <model_dir> <images.u8> <n> <size> <out.json> [backend] [runs]
// Same interface as run_model.mjs, measured inside headless Chromium instead of Node.
import fs from "node:fs";
import path from "node:path";
import { launchChromium } from "./browser.mjs";
import { serve } from "./serve.mjs";

const [dir, imagesPath, n, size, outPath, backend = "wasm", runs = "30"] = process.argv.slice(2);
const server = await serve(dir, 0, path.dirname(path.resolve(imagesPath)));
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${server.address().port}/bench.html`);
  await page.waitForFunction(() => window.benchReady, null, { timeout: 60000 });
  const name = path.basename(imagesPath);
  const result = await page.evaluate(async ([b, n, s, r, f]) => {
    const res = await window.runBench(b, n, s, r, f);
    return res;
  }, [backend, Number(n), Number(size), Number(runs), name]);
  result.browser = browser.version();
  fs.writeFileSync(outPath, JSON.stringify(result));
} finally {
  await browser.close();
  server.close();
}
