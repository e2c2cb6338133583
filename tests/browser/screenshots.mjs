// The README's pictures of the console: the desk (the queue beside a block case, with the
// accounts that shared its cards and devices) and a close about to be confirmed, taken in
// Debian's Chromium from a running console (./scripts/quickstart --keep-running prints its
// address and token). Reads what it shows and changes nothing: the close is cancelled.
//
//   FRAUD_CONSOLE_URL=http://127.0.0.1:8090 FRAUD_CONSOLE_TOKEN=... node tests/browser/screenshots.mjs docs/images
import { chromium } from "playwright-core";

const [dir = "docs/images"] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"], timeout: 60_000 });
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  page.setDefaultTimeout(15_000);
  await page.goto(process.env.FRAUD_CONSOLE_URL);
  await page.fill("#token", process.env.FRAUD_CONSOLE_TOKEN);
  await page.click("#login button");
  await page.locator("#cases tbody tr").first().waitFor();
  // The block case whose account shares the most: the first with links, else the first block.
  const blocks = page.locator("#cases tbody tr", { hasText: "block" });
  const count = Math.min(await blocks.count(), 20);
  for (let i = 0; i < count; i++) {
    await blocks.nth(i).click();
    await page.locator("#case-events .reason").first().waitFor();
    await page.locator("#links-state").filter({ hasNotText: "Looking" }).waitFor();
    if (await page.locator("#links tbody tr").count() > 0) break;
  }
  await page.screenshot({ path: `${dir}/console-desk.png` });
  await page.keyboard.press("c");
  await page.check("#close-form input[value=fraud]");
  await page.screenshot({ path: `${dir}/console-close.png` });
  await page.keyboard.press("Escape");
  console.log(`screenshots: ${dir}/console-desk.png, ${dir}/console-close.png`);
} finally {
  await browser.close();
}
