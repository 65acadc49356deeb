// Drives Debian's headless Chromium (through playwright-core) against a running sidecar's
// page, for tests/page_browser.rs. One line per step on stdout; the test answers on stdin.
//
//   node page.mjs <page url> <path prefix or -> <expected peers> <screenshot path>
//
//   → ROWS <json>        every expected peer has a row: what each row shows
//   ← FAULT <peer>       the test has taken that peer down
//   → DOWN <peer> <ms>   its row shows it down, this long after FAULT
//   → SHIFT <score>      the cumulative layout shift of the updates since ROWS
//   → SHOT <path>        a full-page screenshot
//   → BIG <rows> <ms>    a 1,000-peer status (served by the route below) rendered
//   → ERRORS <json>      console errors and uncaught page errors; then exit
//
// With a prefix (`/peerscope`), requests under it are rewritten to the sidecar's own
// paths, as a reverse proxy serving the page at /peerscope/ would.
import readline from "node:readline";
import { launch } from "./launch.mjs";

const [url, prefix, expected, screenshot] = process.argv.slice(2);
const say = (line) => process.stdout.write(line + "\n");
const input = readline.createInterface({ input: process.stdin });
const lines = input[Symbol.asyncIterator]();

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors = [];
  page.on("console", (message) => { if (message.type() === "error") errors.push(message.text()); });
  page.on("pageerror", (error) => errors.push(String(error)));
  if (prefix !== "-") {
    // A reverse proxy that serves the sidecar at <prefix>/ only: paths under the prefix
    // reach the sidecar without it, any other path on that host fails (an absolute link
    // in the page would).
    const host = new URL(url).host;
    await page.route((u) => u.host === host, (route) => {
      const target = new URL(route.request().url());
      if (!target.pathname.startsWith(prefix + "/")) return route.abort();
      target.pathname = target.pathname.slice(prefix.length);
      return route.continue({ url: target.toString() });
    });
  }
  await page.goto(url);
  await page.waitForFunction((n) => document.querySelectorAll("#peers tbody tr[data-peer]").length === n,
    Number(expected), { timeout: 30000 });
  const rows = await page.$$eval("#peers tbody tr[data-peer]", (trs) => trs.map((tr) => ({ ...tr.dataset })));
  say("ROWS " + JSON.stringify(rows));
  // Layout shifts from here on: updates must not move what is on screen.
  await page.evaluate(() => {
    window.layoutShift = 0;
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) if (!entry.hadRecentInput) window.layoutShift += entry.value;
    }).observe({ type: "layout-shift" });
  });

  const fault = (await lines.next()).value.split(" ")[1];
  const injected = Date.now();
  await page.waitForSelector(`#peers tbody tr[data-peer="${fault}"][data-up="false"]`, { timeout: 30000 });
  say(`DOWN ${fault} ${Date.now() - injected}`);
  say("SHIFT " + (await page.evaluate(() => window.layoutShift)).toFixed(4));

  await page.screenshot({ path: screenshot, fullPage: true });
  say("SHOT " + screenshot);

  // 1,000 peers: the real status, its peers repeated under new names.
  const real = await page.evaluate(() => window.peerscope.lastStatus);
  const big = { ...real, peers: Array.from({ length: 1000 }, (_, i) => ({ ...real.peers[i % real.peers.length], label: `peer-${i}` })) };
  await page.route((u) => u.pathname.endsWith("/status"), (route) => route.fulfill({ json: big }));
  await page.waitForFunction(() => document.querySelectorAll("#peers tbody tr[data-peer]").length === 1000, null, { timeout: 30000 });
  const millis = await page.evaluate(() => window.peerscope.lastRenderMs);
  say(`BIG 1000 ${millis.toFixed(1)}`);
  say("ERRORS " + JSON.stringify(errors));
} finally {
  await browser.close();
  input.close();
}
