// The README's pictures of the console: the queue and the first case in it, taken in Debian's
// Chromium from a running console (./scripts/quickstart --keep-running prints its address and
// token). Reads nothing it does not show, and changes nothing.
//
//   FRAUD_CONSOLE_URL=http://127.0.0.1:8090 FRAUD_CONSOLE_TOKEN=... node tests/browser/screenshots.mjs docs/images
import { chromium } from "playwright-core";

const [dir = "docs/images"] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"], timeout: 60_000 });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  page.setDefaultTimeout(15_000);
  await page.goto(process.env.FRAUD_CONSOLE_URL);
  await page.fill("#token", process.env.FRAUD_CONSOLE_TOKEN);
  await page.click("#login button");
  const rows = page.locator("#cases tbody tr");
  await rows.first().waitFor();
  await page.screenshot({ path: `${dir}/console-queue.png` });
  await page.locator("#cases tbody tr", { hasText: "block" }).first().click();
  await page.locator("#case-events .reason").first().waitFor();
  await page.locator("#case").scrollIntoViewIfNeeded();
  await page.locator("#case").screenshot({ path: `${dir}/console-case.png` });
  console.log(`screenshots: ${dir}/console-queue.png, ${dir}/console-case.png`);
} finally {
  await browser.close();
}
