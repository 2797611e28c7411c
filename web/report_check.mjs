// node web/report_check.mjs <reports/index.html> <screenshot.png>
// Opens the report page from disk in headless Chromium (playwright-core, Debian's
// /usr/bin/chromium), records every network request, and prints per section the tables
// and images it holds (with whether each image decoded) as JSON; saves a screenshot.
import path from "node:path";
import { launchChromium } from "./browser.mjs";

const [page_, shot] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const requests = [];
  page.on("request", (r) => requests.push(r.url()));
  await page.goto("file://" + path.resolve(page_), { waitUntil: "load" });
  const sections = await page.evaluate(() => [...document.querySelectorAll("section")].map((s) => ({
    id: s.id,
    title: s.querySelector("h2").textContent,
    tables: s.querySelectorAll("table").length,
    rows: [...s.querySelectorAll("table")].map((t) => t.rows.length),
    images: [...s.querySelectorAll("img")].map((i) => ({ alt: i.alt, ok: i.complete && i.naturalWidth > 0 })),
    provenance: s.querySelector("details summary")?.textContent || "",
  })));
  await page.screenshot({ path: shot });
  console.log(JSON.stringify({ title: await page.title(), requests, sections }));
} finally {
  await browser.close();
}
