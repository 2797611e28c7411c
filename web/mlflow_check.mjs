// node web/mlflow_check.mjs <tracking UI url> <experiment id> <registered model> <screenshot.png>
// Opens an experiment's runs in MLflow's model-training view (?workflowType=machine_learning)
// in headless Chromium (playwright-core, Debian's chromium), waits for the runs table's
// Dataset column, saves a screenshot, then opens the registered model's page; prints JSON:
// {datasets: the Dataset column's cells, versions: the model page's version links and
// the alias shown on each version's row}.
import { launchChromium } from "./browser.mjs";

const [url, experiment, model, shot] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 560 } });
  await page.goto(`${url}/#/experiments/${experiment}/runs?workflowType=machine_learning`);
  const column = '.ag-row .ag-cell[col-id="attributes.`Dataset`"]';
  await page.locator(column).first().waitFor({ timeout: 60000 });
  const close = page.getByRole("button", { name: /close/i });     // the assistant's side panel
  if (await close.count()) await close.first().click().catch(() => {});
  await page.waitForTimeout(500);
  const datasets = await page.locator(column).allInnerTexts();
  await page.screenshot({ path: shot });
  await page.goto(`${url}/#/models/${encodeURIComponent(model)}?workflowType=machine_learning`);
  const links = page.locator(`a[href^="#/models/${model}/versions/"]`);
  await links.first().waitFor({ timeout: 60000 });
  const versions = await links.evaluateAll((as) => as.map((a) => ({
    href: a.getAttribute("href"), text: a.innerText,
    row: a.closest("tr, [role=row]")?.innerText.replace(/\s+/g, " ") || "" })));
  console.log(JSON.stringify({ datasets, versions }));
} finally {
  await browser.close();
}
