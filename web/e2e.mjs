// node web/e2e.mjs <model_dir> <image> <screenshot.png> [backend]
// Headless Chromium (Debian's /usr/bin/chromium via playwright-core) loads the demo,
// feeds it the image, prints the page's result as JSON and saves a screenshot.
import { launchChromium } from "./browser.mjs";
import { serve } from "./serve.mjs";

const [modelDir, image, shot, backend = ""] = process.argv.slice(2);
const server = await serve(modelDir);
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 720 } });
  const logs = [];
  page.on("console", (m) => logs.push(m.text()));
  const q = backend ? `?backend=${backend}` : "";
  await page.goto(`http://127.0.0.1:${server.address().port}/${q}`);
  await page.waitForFunction(() => window.ferReady, null, { timeout: 120000 });
  if (await page.evaluate(() => window.ferReady) === "error") throw new Error(await page.textContent("#status"));
  await page.setInputFiles("#file", image);
  await page.waitForFunction(() => window.ferResult, null, { timeout: 120000 });
  const result = await page.evaluate(() => window.ferResult);
  result.status = await page.textContent("#status");
  result.bars = await page.$$eval("#bars .bar", (bars) => bars.map((b) => ({
    label: b.querySelector("span").textContent, elements: b.querySelector("span").children.length,
    value: b.querySelector("b").textContent })));
  result.statusIsError = await page.evaluate(() => document.getElementById("status").className === "error");
  await page.screenshot({ path: shot });
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
  server.close();
}
