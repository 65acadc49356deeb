// Loads a sidecar's page over TLS behind basic auth in Debian's headless Chromium, for
// tests/page_browser.rs: the browser is challenged (401 + WWW-Authenticate), answers with
// the credentials it was given, and the page's relative fetches carry them too.
//
//   node secure.mjs <page url> <user> <password> <expected peers>
//
//   → ANONYMOUS <status>  what a browser without credentials gets
//   → ROWS <n>            with credentials: the peer rows the page rendered
//   → ERRORS <json>       console errors and uncaught page errors; then exit
import { launch } from "./launch.mjs";

const [url, username, password, expected] = process.argv.slice(2);
const say = (line) => process.stdout.write(line + "\n");
const browser = await launch();
try {
  // The test's own CA is not in Chromium's store; what is under test here is the page
  // behind TLS and auth (certificate verification is tested with a real CA elsewhere).
  const anonymous = await browser.newContext({ ignoreHTTPSErrors: true });
  // (A navigation would end in net::ERR_INVALID_AUTH_CREDENTIALS: headless Chromium
  // cancels the login prompt; the browser's own request API shows the answer.)
  const refused = await anonymous.request.get(url);
  say("ANONYMOUS " + refused.status());
  const context = await browser.newContext({ ignoreHTTPSErrors: true, httpCredentials: { username, password } });
  const page = await context.newPage();
  const errors = [];
  page.on("console", (message) => { if (message.type() === "error") errors.push(message.text()); });
  page.on("pageerror", (error) => errors.push(String(error)));
  await page.goto(url);
  await page.waitForFunction((n) => document.querySelectorAll("#peers tbody tr[data-peer]").length === n,
    Number(expected), { timeout: 30000 });
  say("ROWS " + (await page.$$eval("#peers tbody tr[data-peer]", (trs) => trs.length)));
  say("ERRORS " + JSON.stringify(errors));
} finally {
  await browser.close();
}
