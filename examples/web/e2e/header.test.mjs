// Header mode: two pages of one user, each in a browser context of its own, on an origin other
// than the API's. Page A writes; page B follows the change stream and shows A's writes as they
// happen, and makes the change that leaves A's open edit stale.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it as test } from "node:test";

import { launch, openPage, screenshot, steps } from "./browser.mjs";
import { artifactFolder, startApi, startWeb } from "./servers.mjs";

const it = steps(test);
const folder = artifactFolder("header");
const STALE = "urn:todo:problem:stale-version";

const task = (page, title) => page.locator(`#tasks > li[data-title="${title}"]`);
const requestRow = (page, method, status) =>
  page.locator(`#requests tr[data-method="${method}"][data-status="${status}"]`).last();

async function shoot(step, a, b) {
  await screenshot(a.page, folder, `${step}-a`);
  await screenshot(b.page, folder, `${step}-b`);
}

describe("header mode: two pages of one user", { timeout: 120_000 }, () => {
  let web, api, browser, a, b;

  before(async () => {
    web = await startWeb();
    api = await startApi(
      { AUTH_MODE: "header", CORS_ORIGINS: web.origin },
      join(folder, "api.log"),
    );
    browser = await launch();
    a = await openPage(browser);
    b = await openPage(browser);
    // Two tasks a page, so that reading the list of three follows a Link header.
    const url = `${web.origin}/?api=${encodeURIComponent(api.url)}&user=${randomUUID()}&pageSize=2`;
    await Promise.all([a.page.goto(url), b.page.goto(url)]);
  });

  after(async () => {
    if (it.failed !== undefined) await shoot("failed", a, b);
    a?.network.save(join(folder, "network-a.json"));
    b?.network.save(join(folder, "network-b.json"));
    await browser?.close();
    await api?.stop();
    await web?.stop();
  });

  it("opens the change stream on both pages", async () => {
    for (const { page } of [a, b]) await page.locator('#sync[data-state="live"]').waitFor();
    // Gone if B ever reloads: every later change must reach it through the open stream.
    await b.page.evaluate(() => {
      window.loadedOnce = true;
    });
    await shoot("01-live", a, b);
  });

  it("creates tasks on A, reading Location and ETag; B shows them live", async () => {
    for (const title of ["Buy milk", "Walk the dog", "Water the plants"]) {
      await a.page.fill("#new-task input[name=title]", title);
      await a.page.click("#new-task button");
      await task(a.page, title).and(a.page.locator(`[data-etag='"1"']`)).waitFor();
      await task(b.page, title).waitFor();
    }
    const created = requestRow(a.page, "POST", 201);
    assert.match(await created.locator(".location").innerText(), /^\/api\/tasks\/[0-9a-f-]{36}$/);
    assert.equal(await created.locator(".etag").innerText(), '"1"');
    assert.match(await created.locator(".x-request-id").innerText(), /^\S+$/);
    assert.match(
      await a.page.innerText("#message"),
      /^Created at \/api\/tasks\/\S+ with ETag "1"\.$/,
    );
    // The newest first, in the user's order, on both.
    const order = ["Water the plants", "Walk the dog", "Buy milk"];
    for (const { page } of [a, b]) {
      assert.deepEqual(await page.locator("#tasks > li").evaluateAll(titles), order);
    }
    // B read its tasks from the stream only: it has read no ETag yet.
    assert.equal(await task(b.page, "Buy milk").getAttribute("data-etag"), "");
    await shoot("02-created", a, b);
  });

  it("edits on A with If-Match; B shows the new title", async () => {
    await task(a.page, "Buy milk").locator(".edit").click();
    // Opening the editor revalidates the copy: If-None-Match, a 304.
    await requestRow(a.page, "GET", 304).waitFor();
    const editor = task(a.page, "Buy milk").locator(".editor");
    await editor.locator("input[name=title]").fill("Buy oat milk");
    await editor.locator("button", { hasText: "Save" }).click();
    await task(a.page, "Buy oat milk").and(a.page.locator(`[data-etag='"2"']`)).waitFor();
    await task(b.page, "Buy oat milk").waitFor();
    const put = requestRow(a.page, "PUT", 200);
    assert.equal(await put.locator(".if-match").innerText(), '"1"');
    assert.equal(await put.locator(".etag").innerText(), '"2"');
    await shoot("03-edited", a, b);
  });

  it("shows the 412 on A when B changed the task during A's edit", async () => {
    await task(a.page, "Buy oat milk").locator(".edit").click();
    const editor = task(a.page, "Buy oat milk").locator(".editor");
    await editor.locator(".basis", { hasText: 'editing from ETag "2"' }).waitFor();

    // B, which has read no ETag of the task, reads one, then toggles with it.
    await task(b.page, "Buy oat milk").locator(".toggle").click();
    await task(b.page, "Buy oat milk")
      .and(b.page.locator(`[data-status="completed"][data-etag='"3"']`))
      .waitFor();
    // A sees it live, and forgets the ETag it held: that copy is stale now.
    await task(a.page, "Buy oat milk")
      .and(a.page.locator('[data-status="completed"][data-etag=""]'))
      .waitFor();

    await editor.locator("input[name=title]").fill("Buy oat milk and bread");
    await editor.locator("button", { hasText: "Save" }).click();
    const problem = a.page.locator(`#message[data-status="412"][data-type="${STALE}"]`);
    await problem.waitFor();
    // The current ETag comes from the 412's own header.
    assert.match(await problem.innerText(), /It is now at ETag "3": save again to overwrite it\.$/);
    assert.equal(await requestRow(a.page, "PUT", 412).locator(".if-match").innerText(), '"2"');
    assert.equal(await requestRow(a.page, "PUT", 412).locator(".etag").innerText(), '"3"');
    // Nothing changed: the title stays on both pages, the edit stays open with its text.
    await task(b.page, "Buy oat milk").waitFor();
    assert.equal(await editor.locator("input[name=title]").inputValue(), "Buy oat milk and bread");
    await editor.locator(".basis", { hasText: 'editing from ETag "3"' }).waitFor();
    await shoot("04-stale", a, b);
  });

  it("saves again on A from the ETag the 412 carried", async () => {
    await task(a.page, "Buy oat milk").locator(".editor button", { hasText: "Save" }).click();
    await task(a.page, "Buy oat milk and bread").and(a.page.locator(`[data-etag='"4"']`)).waitFor();
    await task(b.page, "Buy oat milk and bread")
      .and(b.page.locator('[data-status="completed"]'))
      .waitFor();
    assert.equal(await requestRow(a.page, "PUT", 200).locator(".if-match").innerText(), '"3"');
    await shoot("05-overwritten", a, b);
  });

  it("toggles on A; B shows it done", async () => {
    await task(a.page, "Walk the dog").locator(".toggle").click();
    await task(a.page, "Walk the dog")
      .and(a.page.locator(`[data-status="completed"][data-etag='"2"']`))
      .waitFor();
    await task(b.page, "Walk the dog").and(b.page.locator('[data-status="completed"]')).waitFor();
    assert.equal(await requestRow(a.page, "PATCH", 200).locator(".if-match").innerText(), '"1"');
    await shoot("06-toggled", a, b);
  });

  it("reads the list page by page on B (Link), the same as the live copy", async () => {
    await b.page.click("#compare");
    await b.page.locator('#message[data-same="true"]').waitFor();
    assert.match(
      await b.page.innerText("#message"),
      /has 3 tasks in 2 pages: the same as the live copy/,
    );
    const pages = b.page.locator('#requests tr[data-method="GET"][data-path="/api/tasks"]');
    assert.equal(await pages.count(), 2);
    assert.match(
      await pages.nth(0).locator(".link").innerText(),
      /^<[^>]*cursor=[^>]*>; rel="next"$/,
    );
    assert.equal(await pages.nth(1).locator(".link").innerText(), "");
    await shoot("07-listed", a, b);
  });

  it("deletes on A with If-Match; B drops it", async () => {
    await task(a.page, "Water the plants").locator(".delete").click();
    await task(a.page, "Water the plants").waitFor({ state: "detached" });
    await task(b.page, "Water the plants").waitFor({ state: "detached" });
    const deleted = requestRow(a.page, "DELETE", 204);
    assert.equal(await deleted.locator(".if-match").innerText(), '"1"');
    for (const { page } of [a, b]) assert.equal(await page.locator("#tasks > li").count(), 2);
    // Every change reached B through the stream it opened at the start, none through a reload.
    assert.equal(await b.page.evaluate(() => window.loadedOnce), true);
    assert.ok(Number(await b.page.getAttribute("#sync", "data-live-changes")) > 0);
    await shoot("08-deleted", a, b);
  });

  it("went through real CORS preflights and read the exposed headers", () => {
    const apiOrigin = new URL(api.url).origin;
    const toApi = a.network.entries().filter((entry) => new URL(entry.url).origin === apiOrigin);
    const preflights = toApi.filter((entry) => entry.method === "OPTIONS");
    const asked = (method, header) =>
      preflights.find(
        (entry) =>
          entry.headers["access-control-request-method"] === method &&
          entry.headers["access-control-request-headers"]?.split(",").includes(header),
      );
    for (const [method, header] of [
      ["GET", "x-user-id"],
      ["POST", "idempotency-key"],
      ["PUT", "if-match"],
      ["PATCH", "if-match"],
      ["DELETE", "if-match"],
    ]) {
      const preflight = asked(method, header);
      assert.ok(preflight, `a preflight for ${method} with ${header}`);
      assert.equal(preflight.headers.origin, web.origin);
      assert.equal(preflight.status, 200);
      assert.equal(preflight.responseHeaders["access-control-allow-origin"], web.origin);
    }
    const created = toApi.find((entry) => entry.method === "POST" && entry.status === 201);
    const exposed = created.responseHeaders["access-control-expose-headers"].split(/,\s*/);
    for (const name of ["ETag", "Location", "Link", "X-Request-ID"])
      assert.ok(exposed.includes(name), name);
    // The server saw them too.
    assert.match(readFileSync(api.log, "utf8"), /method=OPTIONS route=\/api\/tasks status=200/);
    for (const { errors } of [a, b]) assert.deepEqual(errors, []);
  });
});

function titles(rows) {
  return rows.map((row) => row.dataset.title);
}
