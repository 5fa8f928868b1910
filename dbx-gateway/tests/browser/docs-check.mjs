// Loads a running gateway's /docs in headless Chromium (Debian's, through
// playwright-core; nothing is downloaded), checks that the operations are
// listed, authorizes with a bearer token through Swagger UI's Authorize
// dialog, runs "Try it out" -> Execute on POST /v1/db/{db}/sql/query and
// checks that the page shows status 200 and the expected row. Saves a
// cropped screenshot of that operation.
//
// env: GATEWAY_URL (http://127.0.0.1:PORT), TOKEN (a JWT the gateway
// accepts), DB (a SQL database holding the table `notes` with row id 1
// 'hello from dbx'), SHOT (PNG path; optional), CHROMIUM (default
// /usr/bin/chromium).
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const base = process.env.GATEWAY_URL;
const token = process.env.TOKEN;
const db = process.env.DB || "lite";
const shot = process.env.SHOT;
if (!base || !token) {
  console.error("docs-check: set GATEWAY_URL and TOKEN");
  process.exit(2);
}

function fail(msg) {
  throw new Error(msg);
}

const profile = mkdtempSync(join(tmpdir(), "dbx-docs-chromium-"));
// A fresh profile directory (--user-data-dir), given the playwright way.
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1100, height: 900 },
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
let failed = false;
try {
  const page = await browser.newPage();
  // Only the gateway itself: any other request is a bug (assets are in the binary).
  const foreign = [];
  page.on("request", (r) => {
    if (!r.url().startsWith(base) && !r.url().startsWith("data:")) foreign.push(r.url());
  });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  await page.goto(`${base}/docs/`, { waitUntil: "load" });
  await page.waitForSelector(".opblock", { timeout: 15000 });
  const ops = await page.locator(".opblock").count();
  const title = (await page.locator(".info .title").first().innerText()).trim();
  console.log(`docs: title "${title.split("\n")[0]}", ${ops} operations listed`);
  if (ops < 20) fail(`expected the /v1 operations listed, found ${ops}`);
  if (!title.startsWith("dbx-gateway")) fail(`unexpected title: ${title}`);

  // Authorize: the bearer scheme.
  await page.click("button.authorize");
  const dialog = page.locator(".modal-ux");
  await dialog.locator("input").first().fill(token);
  await dialog.locator("button.authorize").click();
  await dialog.getByText("Authorized", { exact: false }).first().waitFor({ timeout: 5000 });
  await dialog.locator("button.btn-done").click();
  console.log("docs: authorized with the bearer token");

  // Try it out on SQL query.
  const op = page.locator("#operations-sql-sql_query");
  await op.locator(".opblock-summary").click();
  await op.locator("button.try-out__btn").click();
  await op.locator('tr[data-param-name="db"] input').fill(db);
  const body = JSON.stringify({ sql: "SELECT id, body FROM notes WHERE id = $1", params: [1] }, null, 2);
  await op.locator("textarea.body-param__text").fill(body);
  await op.locator("button.execute").click();
  const live = op.locator(".live-responses-table");
  await live.waitFor({ timeout: 15000 });
  const status = (await live.locator("tr.response td.response-col_status").first().innerText()).trim();
  const shown = await live.locator("tr.response td.response-col_description").first().innerText();
  console.log(`docs: Execute -> status ${status}`);
  if (status !== "200") fail(`expected 200, page shows ${status}: ${shown}`);
  if (!shown.includes("hello from dbx") || !shown.includes('"row_count": 1'))
    fail(`the response body shown lacks the row: ${shown}`);
  const curl = await op.locator(".curl-command").innerText();
  if (!curl.includes("Authorization: Bearer")) fail("the curl shown carries no bearer token");
  console.log("docs: the response body with the row is shown");

  if (foreign.length) fail(`requests left the gateway: ${foreign.join(", ")}`);
  if (errors.length) fail(`page errors: ${errors.join("; ")}`);

  if (shot) {
    // Collapse the parameter and request parts a little: shoot the operation block.
    await op.scrollIntoViewIfNeeded();
    await op.screenshot({ path: shot });
    console.log(`docs: screenshot ${shot} (${statSync(shot).size} bytes)`);
  }
  console.log("docs check: ok");
} catch (e) {
  failed = true;
  console.error(`docs check FAILED: ${e.message}`);
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
