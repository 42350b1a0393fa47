// The API's documentation pages with every request to a host other than loopback aborted: they
// must render from the app's own URLs alone (docs/api.md, "The documentation pages").
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { launch, screenshot } from "./browser.mjs";
import { artifactFolder, startApi } from "./servers.mjs";

const folder = artifactFolder("docs");
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);
const METHODS = new Set(["get", "put", "post", "delete", "options", "head", "patch", "trace"]);
// ReDoc's side menu shows a logo from Redocly's CDN; the page's Content-Security-Policy refuses
// it before a request leaves the browser, and ReDoc then hides it.
const REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg";

const offLoopback = (href) => {
  const url = new URL(href);
  return !(url.protocol === "data:" || url.protocol === "blob:" || LOOPBACK.has(url.hostname));
};

describe("the documentation pages, offline", { timeout: 120_000 }, () => {
  let api, browser, context, operations;
  // Requests the pages tried off loopback, those the route aborted, and every failure.
  const attempted = [];
  const blocked = [];
  const failed = [];

  before(async () => {
    api = await startApi({ AUTH_MODE: "header" }, join(folder, "api.log"));
    const document = await (await fetch(`${api.url}/openapi.json`)).json();
    operations = Object.values(document.paths).flatMap((item) =>
      Object.keys(item).filter((key) => METHODS.has(key)),
    ).length;
    browser = await launch();
    context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    context.setDefaultTimeout(15_000);
    await context.route("**/*", (route) => {
      const url = route.request().url();
      if (!offLoopback(url)) return route.continue();
      blocked.push(url);
      return route.abort("blockedbyclient");
    });
    context.on("request", (request) => {
      if (offLoopback(request.url())) attempted.push(request.url());
    });
    context.on("requestfailed", (request) =>
      failed.push({ url: request.url(), error: request.failure()?.errorText }),
    );
  });

  after(async () => {
    await browser?.close();
    await api?.stop();
  });

  it("renders every operation on /docs (Swagger UI)", async () => {
    const page = await context.newPage();
    await page.goto(`${api.url}/docs`);
    await page.locator(".opblock").first().waitFor();
    assert.equal(await page.locator(".opblock").count(), operations);
    assert.deepEqual(attempted, []);
    assert.deepEqual(blocked, []);
    assert.deepEqual(failed, []);
    await screenshot(page, folder, "01-swagger-ui");
  });

  it("renders every operation on /redoc", async () => {
    const page = await context.newPage();
    await page.goto(`${api.url}/redoc`);
    await page.locator("[data-section-id]").first().waitFor();
    assert.equal(await page.locator('[data-section-id^="operation/"]').count(), operations);
    // Nothing else was tried off loopback, and nothing reached the network to be aborted.
    assert.deepEqual(
      attempted.filter((url) => url !== REDOC_LOGO),
      [],
    );
    assert.deepEqual(
      failed.filter(({ url, error }) => url !== REDOC_LOGO || error !== "csp"),
      [],
    );
    assert.deepEqual(blocked, []);
    await screenshot(page, folder, "02-redoc");
  });
});
