// Debian's Chromium, driven by playwright-core (no browser download), and what the tests record.
import { writeFileSync } from "node:fs";
import { join } from "node:path";

import { chromium } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";
// Milliseconds a step may wait for the page; every wait is for a DOM condition.
const TIMEOUT = 15_000;

export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
    ],
  });
}

/** A page in a context of its own (its own cookies, cache and connections). */
export async function openPage(browser) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error));
  return { context, page, errors, network: await recordNetwork(page) };
}

/**
 * Every request the page's network stack sends, CORS preflights included, with the answer's
 * status and headers. Playwright's own request events leave preflights out; DevTools has them.
 */
async function recordNetwork(page) {
  const byId = new Map();
  const session = await page.context().newCDPSession(page);
  session.on("Network.requestWillBeSent", ({ requestId, request, type }) => {
    // A redirect reuses the id; the record keeps the last hop.
    byId.set(requestId, {
      method: request.method,
      url: request.url,
      type,
      headers: lower(request.headers),
    });
  });
  session.on("Network.requestWillBeSentExtraInfo", ({ requestId, headers }) => {
    const entry = byId.get(requestId);
    if (entry) entry.headers = { ...entry.headers, ...lower(headers) };
  });
  session.on("Network.responseReceived", ({ requestId, response }) => {
    const entry = byId.get(requestId);
    if (entry)
      Object.assign(entry, { status: response.status, responseHeaders: lower(response.headers) });
  });
  await session.send("Network.enable");
  return {
    entries: () => [...byId.values()],
    save: (file) => writeFileSync(file, `${JSON.stringify([...byId.values()], null, 2)}\n`),
  };
}

function lower(headers) {
  return Object.fromEntries(
    Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]),
  );
}

/** A full-page screenshot, named by its step, into the suite's artifact folder. */
export function screenshot(page, folder, name) {
  return page.screenshot({ path: join(folder, `${name}.png`), fullPage: true });
}

/**
 * `it`, for steps that build on each other: once one fails, the later ones are skipped rather
 * than each waiting out its timeout on a page that never got there. `step.failed` names it.
 */
export function steps(it) {
  const step = (name, run) =>
    it(name, async (t) => {
      if (step.failed !== undefined) return t.skip(`after "${step.failed}" failed`);
      try {
        await run(t);
      } catch (error) {
        step.failed = name;
        throw error;
      }
    });
  step.failed = undefined;
  return step;
}
