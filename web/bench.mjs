// node web/bench.mjs <images.u8> <n> <size> <out.json> <backend> <runs> <warmup> <classify 1|0>
//                    <model_dir>...
// Same interface as run_model.mjs, measured inside one headless Chromium page instead of
// Node: model i is served as /model<i>/, the images as /data/<file>.
import fs from "node:fs";
import path from "node:path";
import { launchChromium } from "./browser.mjs";
import { serve } from "./serve.mjs";
import { runnerArgs } from "./fer.js";

const [imagesPath, n, size, outPath, backend, runs, warmup, classify, ...dirs] =
  runnerArgs(process.argv);
const mounts = Object.fromEntries(dirs.map((d, i) => [`/model${i}/`, d]));
const server = await serve(dirs[0], 0, path.dirname(path.resolve(imagesPath)), mounts);
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${server.address().port}/bench.html`);
  await page.waitForFunction(() => window.benchReady, null, { timeout: 60000 });
  const name = path.basename(imagesPath);
  const result = await page.evaluate(
    ([b, n, s, r, w, c, f, urls]) => window.runBench(b, n, s, r, w, c, f, urls),
    [backend, Number(n), Number(size), Number(runs), Number(warmup), classify === "1", name,
     dirs.map((_, i) => `model${i}/model.json`)])
    .catch((e) => {      // name the folder, not the URL it was served under
      throw new Error(e.message.replace(/model(\d+)\//g, (_, i) => `${dirs[Number(i)]}/`));
    });
  result.browser = browser.version();
  fs.writeFileSync(outPath, JSON.stringify(result));
} finally {
  await browser.close();
  server.close();
}
