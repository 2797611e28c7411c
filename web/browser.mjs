// Headless Chromium for the scripts that drive a page (bench.mjs, e2e.mjs,
// report_check.mjs): Debian's /usr/bin/chromium (or $CHROMIUM) through playwright-core,
// offline (no background networking, updates or sync).
import { chromium } from "playwright-core";

export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
}
