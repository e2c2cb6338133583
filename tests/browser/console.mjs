// An analyst's walk through fraud-console in a real Chromium (Debian's package), driven by
// Playwright. First a new analyst triages with the keyboard only: five cases in the queue's
// order, one assigned, the account that shared a case's device found and opened, a close
// that names the transaction it labels before it is confirmed; axe-core checks the queue and
// a case. Then another analyst signs in, finds the account's case in the queue, reads why
// each rule fired, comments, closes it as fraud, deny-lists the card. tests/browser/browser_test.cpp sets up the database, a
// replica and the console, runs this, and checks what it left in the database and that the
// replica blocks the card's next payment.
//
// Then a lead opens that case and another account's, and proposes to suppress a rule from the
// second (for the second account, not the first); the same lead cannot approve it, and a
// second lead does.
//
//   FRAUD_CONSOLE_URL=http://127.0.0.1:8090 FRAUD_CONSOLE_TOKEN=... FRAUD_CASE_ACCOUNT=acc-7 \
//   FRAUD_DENY_CARD=card-77 FRAUD_LEAD_TOKEN=... FRAUD_SECOND_LEAD_TOKEN=... \
//   FRAUD_OTHER_ACCOUNT=acc-8 FRAUD_KEYBOARD_TOKEN=... [FRAUD_SCREENSHOTS_DIR=dir] node tests/browser/console.mjs
//
// The keyboard walk expects browser_test.cpp's cases: acc-13, acc-12, acc-11, acc-10, acc-8
// and acc-7 in the queue's order, acc-11's payment from the device of acc-7's first.
//
// Every wait is bounded (Playwright's timeouts, set below); exit status 0 when every step held.
import assert from "node:assert/strict";
import AxeBuilder from "@axe-core/playwright";
import { chromium } from "playwright-core";

const url = process.env.FRAUD_CONSOLE_URL;
const token = process.env.FRAUD_CONSOLE_TOKEN;
const account = process.env.FRAUD_CASE_ACCOUNT;
const card = process.env.FRAUD_DENY_CARD;
const leadToken = process.env.FRAUD_LEAD_TOKEN;
const secondLeadToken = process.env.FRAUD_SECOND_LEAD_TOKEN;
const other = process.env.FRAUD_OTHER_ACCOUNT;
const keyboardToken = process.env.FRAUD_KEYBOARD_TOKEN;
const shots = process.env.FRAUD_SCREENSHOTS_DIR;
assert.ok(url && token && account && card && leadToken && secondLeadToken && other && keyboardToken,
  "FRAUD_CONSOLE_URL, FRAUD_CONSOLE_TOKEN, FRAUD_CASE_ACCOUNT, FRAUD_DENY_CARD, FRAUD_LEAD_TOKEN, " +
  "FRAUD_SECOND_LEAD_TOKEN, FRAUD_OTHER_ACCOUNT and FRAUD_KEYBOARD_TOKEN are required");

// axe-core's serious and critical findings on the page as it is now, one line each.
async function accessibilityFindings(page) {
  const { violations } = await new AxeBuilder({ page }).analyze();
  return violations.filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

const browser = await chromium.launch({
  executablePath: process.env.FRAUD_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],  // CI runs as root, where Chromium's sandbox cannot start
  timeout: 60_000,
});
try {
  const failures = [];
  {
    // A new analyst, with the keyboard only: no click from here to the end of the block.
    const desk = await (await browser.newContext({ viewport: { width: 1440, height: 900 } })).newPage();
    desk.setDefaultTimeout(15_000);
    desk.on("pageerror", (error) => failures.push(error.message));
    await desk.goto(url);
    await desk.locator("#token").focus();
    await desk.keyboard.type(keyboardToken);
    await desk.keyboard.press("Enter");
    await desk.locator("#who").filter({ hasText: "bob (analyst)" }).waitFor();
    await desk.locator("#cases tbody tr").nth(5).waitFor();
    assert.deepEqual(await accessibilityFindings(desk), [], "the queue has no serious accessibility violation");
    const title = desk.locator("#case-title");
    const opened = async (key, who) => {
      await desk.keyboard.press(key);
      await title.filter({ hasText: new RegExp(`account ${who}$`) }).waitFor();
      await desk.locator("#cases tbody tr[aria-current=true]", { hasText: who }).waitFor();
    };
    await opened("j", "acc-13");
    await opened("j", "acc-12");
    await desk.keyboard.press("a");
    await desk.locator("#case-message").filter({ hasText: "Assigned to you." }).waitFor();
    await desk.locator("#cases tbody tr", { hasText: "acc-12" }).filter({ hasText: "bob" }).waitFor();
    await opened("j", "acc-11");
    // Who else used its device: acc-7, whose first payment came from it, with its open case.
    const link = desk.locator("#links tbody tr", { hasText: "acc-7" });
    await link.filter({ hasText: "dev-7" }).filter({ hasText: "device.id" }).waitFor();
    assert.match(await link.innerText(), /Open #\d+/);
    assert.doesNotMatch(await desk.locator("#links-state").innerText(), /Could not/);
    assert.deepEqual(await accessibilityFindings(desk), [], "a case has no serious accessibility violation");
    if (shots) await desk.screenshot({ path: `${shots}/console-desk.png` });
    // A close chooses nothing for the analyst, and names what it will label before it is made.
    await desk.keyboard.press("c");
    await desk.locator("#close-dialog[open]").waitFor();
    assert.equal(await desk.locator("#confirm-close").isDisabled(), true);
    await desk.locator("#close-effect").filter({ hasText: "nothing is chosen for you" }).waitFor();
    await desk.keyboard.press("Escape");
    await desk.locator("#close-dialog[open]").waitFor({ state: "detached" });
    await desk.keyboard.press("c");
    await desk.locator("#close-dialog[open]").waitFor();
    await desk.keyboard.press("Space");  // the first choice, focused as the dialog opens: fraud
    await desk.locator("#close-effect").filter({ hasText: "labels its transaction fraud" }).waitFor();
    assert.match(await desk.locator("#close-labels").innerText(), /^txn-11 — EUR\s?11,100\.00 — /);
    if (shots) await desk.screenshot({ path: `${shots}/console-close.png` });
    await desk.keyboard.press("Enter");
    await desk.locator("#case-message").filter({ hasText: "Closed as fraud." }).waitFor();
    await desk.locator("#case-badges").filter({ hasText: "fraud" }).waitFor();
    // Closed, it left the queue of open and assigned cases. Its link to acc-7 is still shown:
    // l goes to the first linked account's case, Enter opens it.
    await desk.locator("#cases tbody tr", { hasText: "acc-11" }).waitFor({ state: "detached" });
    await link.locator("button").waitFor();
    await desk.keyboard.press("l");
    await desk.keyboard.press("Enter");
    await title.filter({ hasText: /account acc-7$/ }).waitFor();
    // From acc-7, the last in the queue, back up through acc-8 and acc-10.
    await opened("k", "acc-8");
    await opened("k", "acc-10");
    // The arrows act in the queue only: with the focus on the page, ↓ opens nothing. (A key's
    // handler runs as it is pressed: a case it opened would have been fetched by then.)
    const fetches = () => desk.evaluate(() => window.fetches);
    await desk.evaluate(() => {
      window.fetches = 0;
      const fetch = window.fetch;
      window.fetch = (...request) => (window.fetches++, fetch(...request));
      document.activeElement.blur();
    });
    await desk.keyboard.press("ArrowDown");
    assert.equal(await fetches(), 0);
    // The single-key shortcuts turned off: j opens nothing, and the page remembers it.
    await desk.locator("#shortcuts-on").focus();
    await desk.keyboard.press("Space");
    await desk.evaluate(() => document.activeElement.blur());
    await desk.keyboard.press("j");
    assert.equal(await fetches(), 0);
    await desk.reload();
    await desk.locator("#who").filter({ hasText: "bob (analyst)" }).waitFor();
    assert.equal(await desk.locator("#shortcuts-on").isChecked(), false);
    console.log("browser: the keyboard walk passed");
    await desk.close();
  }

  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(15_000);
  page.on("pageerror", (error) => failures.push(error.message));

  // A wrong token is refused, and says so.
  await page.goto(url);
  await page.fill("#token", "not-a-token");
  await page.click("#login button");
  await page.locator("#login-error").filter({ hasText: "Sign-in refused" }).waitFor();

  // Signed in, the queue shows the account's open case.
  await page.fill("#token", token);
  await page.click("#login button");
  await page.locator("#who").filter({ hasText: "(analyst)" }).waitFor();
  const row = page.locator("#cases tbody tr", { hasText: account });
  await row.waitFor();
  assert.match(await row.innerText(), /large_amount/);
  if (shots) await page.screenshot({ path: `${shots}/console-queue.png` });

  // The case: each event with what every rule saw, and the account's recent transactions.
  await row.click();
  await page.locator("#case-title").filter({ hasText: account }).waitFor();
  const reasons = page.locator("#case-events .reason");
  await reasons.first().waitFor();
  assert.match(await reasons.first().innerText(), /^large_amount \+60: amount_base \(/);
  assert.ok((await page.locator("#recent tbody tr").count()) >= 2, "the account's recent transactions are listed");
  // Its activity as a chart: the account's three payments, the case's two flagged ones ringed.
  assert.equal(await page.locator("#activity circle").count(), 3);
  assert.equal(await page.locator("#activity circle.in-case").count(), 2);
  assert.match(await page.locator("#activity svg").getAttribute("aria-label"), /^3 transactions in EUR .*, 2 flagged, /);

  // Assigned to herself, then closed as fraud: the actions disappear with the open case.
  await page.click("#assign-me");
  await page.locator("#case-message").filter({ hasText: "Assigned to you." }).waitFor();
  await page.locator("#cases tbody tr", { hasText: account }).filter({ hasText: "alice" }).waitFor();
  await page.fill("#comment-body", "customer denies both large payments");
  await page.click("#comment-form button");
  await page.locator("#timeline li", { hasText: "alice commented: customer denies both large payments" }).waitFor();
  await page.locator("#timeline li", { hasText: "alice: case.assign" }).waitFor();
  if (shots) await page.screenshot({ path: `${shots}/console-case.png`, fullPage: true });
  await page.click("#close-case");
  await page.check("#close-form input[value=fraud]");
  // The two flagged transactions the close labels, named before it is confirmed.
  await page.locator("#close-effect").filter({ hasText: "labels these 2 transactions fraud" }).waitFor();
  assert.match(await page.locator("#close-labels").innerText(), /txn-3 — .*\ntxn-1 — /);
  await page.click("#confirm-close");
  await page.locator("#case-message").filter({ hasText: "Closed as fraud." }).waitFor();
  await page.locator("#case-summary").filter({ hasText: "closed as fraud by" }).waitFor();
  assert.equal(await page.locator("#case-actions").isVisible(), false);

  // The rule's precision now counts the two transactions the close labelled fraud.
  await page.locator("#rule-performance tbody tr", { hasText: "large_amount" }).filter({ hasText: "1.000" }).waitFor();

  // Gone from the queue of open and assigned cases; there among the closed.
  await page.locator("#cases tbody tr", { hasText: account }).waitFor({ state: "detached" });
  await page.selectOption("#filter-state", "closed");
  await page.click("#filters button");
  await page.locator("#cases tbody tr", { hasText: account }).waitFor();

  // An analyst does not suppress rules (a lead does), and the page says so.
  assert.equal(await page.locator("#suppress-form").isVisible(), false);
  await page.locator("#suppress-lead-only").waitFor();

  // The card goes on the deny list for 14 days; the replica's next batch has it.
  await page.fill("#list-name", "deny_cards");
  await page.fill("#list-value", card);
  await page.fill("#list-reason", "reported stolen");
  await page.fill("#list-days", "14");
  await page.click("#list-form button");
  await page.locator("#list-message").filter({ hasText: `Added ${card} to deny_cards.` }).waitFor();
  await page.locator("#list-entries tbody tr", { hasText: card }).filter({ hasText: "reported stolen" }).waitFor();

  assert.deepEqual(failures, [], "the page raised no script errors");
  console.log("browser: the analyst's walk passed");

  // A lead, in a browser of their own, reads the closed case and then another account's.
  const signedIn = async (leadsToken) => {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    page.setDefaultTimeout(15_000);
    page.on("pageerror", (error) => failures.push(error.message));
    await page.goto(url);
    await page.fill("#token", leadsToken);
    await page.click("#login button");
    await page.locator("#who").filter({ hasText: "(lead)" }).waitFor();
    return page;
  };
  const lead = await signedIn(leadToken);
  await lead.selectOption("#filter-state", "");
  await lead.click("#filters button");
  const openOf = async (who) => {
    await lead.locator("#cases tbody tr", { hasText: who }).click();
    await lead.locator("#case-title").filter({ hasText: who }).waitFor();
  };
  await openOf(account);
  assert.equal(await lead.inputValue("#suppress-account"), account);
  // The suppression form follows the case on screen: suppressing from the second case
  // silences the rule for the second account, not the first.
  await openOf(other);
  assert.equal(await lead.inputValue("#suppress-account"), other);
  await lead.fill("#suppress-rule", "large_amount");
  await lead.fill("#suppress-reason", "known payroll");
  await lead.click("#suppress-form button");
  // A suppression lowers decisions: it is proposed, and its proposer cannot approve it.
  await lead.locator("#suppress-message").filter({ hasText: "takes effect when a second lead approves it" }).waitFor();
  const proposal = lead.locator("#proposal-list tbody tr", { hasText: other });
  await proposal.locator("button", { hasText: "Approve" }).click();
  await lead.locator("#proposal-message")
    .filter({ hasText: "Refused: a second lead approves a proposal, not the one who proposed it" }).waitFor();
  if (shots) await lead.screenshot({ path: `${shots}/console-proposal.png`, fullPage: true });
  // What the lead typed is theirs: opening another case keeps it.
  await lead.fill("#suppress-account", "acc-typed");
  await openOf(account);
  assert.equal(await lead.inputValue("#suppress-account"), "acc-typed");
  // A second lead approves it: the suppression is in force.
  const second = await signedIn(secondLeadToken);
  await second.locator("#proposal-list tbody tr", { hasText: other }).locator("button", { hasText: "Approve" }).click();
  await second.locator("#proposal-message").filter({ hasText: "Approved #" }).waitFor();
  await second.locator("#suppressions tbody tr", { hasText: other }).filter({ hasText: "known payroll" }).waitFor();
  await second.locator("#proposal-list tbody tr", { hasText: other }).waitFor({ state: "detached" });
  // Signing out forgets the token and leaves nothing of the desk on screen.
  await second.click("#sign-out");
  await second.locator("#login").waitFor();
  assert.equal(await second.evaluate(() => sessionStorage.getItem("fraud-console-token")), null);
  assert.equal(await second.locator("#console").isHidden(), true);
  assert.equal(await second.locator("#who").textContent(), "");
  assert.deepEqual(failures, [], "the leads' pages raised no script errors");
  console.log("browser: the lead's walk passed");
} finally {
  await browser.close();
}
