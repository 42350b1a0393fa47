// JWT mode: the same page signs up with the real Better Auth issuer of the backend's interop test
// (on the page's own origin, where the web server forwards /api/auth/* to it), fetches a token
// for every call, and uses the API, which verifies the tokens against the issuer's key set.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it as test } from "node:test";

import { launch, openPage, screenshot, steps } from "./browser.mjs";
import { artifactFolder, startApi, startBetterAuth, startWeb } from "./servers.mjs";

const it = steps(test);
const folder = artifactFolder("jwt");

const claims = (part) => JSON.parse(Buffer.from(part, "base64url").toString("utf8"));

describe("JWT mode: a Better Auth user", { timeout: 120_000 }, () => {
  let web, issuer, api, browser, user;

  before(async () => {
    web = await startWeb();
    issuer = await startBetterAuth(web.origin, join(folder, "better-auth.log"));
    web.forwardAuth(issuer.url);
    api = await startApi(
      {
        AUTH_MODE: "jwt",
        AUTH_JWKS_URL: `${issuer.url}/api/auth/jwks`,
        // Better Auth signs with its base URL as both issuer and audience.
        AUTH_ISSUER: issuer.url,
        AUTH_AUDIENCE: issuer.url,
        CORS_ORIGINS: web.origin,
      },
      join(folder, "api.log"),
    );
    browser = await launch();
    user = await openPage(browser);
    await user.page.goto(`${web.origin}/?api=${encodeURIComponent(api.url)}&auth=jwt`);
  });

  after(async () => {
    if (it.failed !== undefined) await screenshot(user.page, folder, "failed");
    user?.network.save(join(folder, "network.json"));
    await browser?.close();
    await api?.stop();
    await issuer?.stop();
    await web?.stop();
  });

  it("signs up with Better Auth from the page", async () => {
    const { page, context } = user;
    const form = page.locator("#sign-up");
    await form.locator("input[name=name]").fill("Alice");
    await form.locator("input[name=email]").fill(`alice-${Date.now()}@example.com`);
    await form.locator("input[name=password]").fill("correct horse battery staple");
    await screenshot(page, folder, "01-sign-up");
    await form.locator("button").click();
    await page.locator("#who", { hasText: "Signed in as alice-" }).waitFor();
    // The stream is open with a token: the API accepted it.
    await page.locator('#sync[data-state="live"]').waitFor();
    const cookies = await context.cookies(web.origin);
    assert.ok(cookies.some((cookie) => cookie.name === "better-auth.session_token"));
    await screenshot(page, folder, "02-signed-in");
  });

  it("creates a task with a token and reads it back through the list and the stream", async () => {
    const { page, network } = user;
    await page.fill("#new-task input[name=title]", "Buy milk");
    await page.click("#new-task button");
    await page.locator(`#tasks > li[data-title="Buy milk"][data-etag='"1"']`).waitFor();
    await page.click("#compare");
    await page.locator('#message[data-same="true"]').waitFor();
    assert.match(
      await page.innerText("#message"),
      /has 1 task in 1 page: the same as the live copy/,
    );

    const apiOrigin = new URL(api.url).origin;
    const calls = network.entries().filter((entry) => new URL(entry.url).origin === apiOrigin);
    const created = calls.find((entry) => entry.method === "POST" && entry.status === 201);
    const [header, payload] = created.headers.authorization.replace(/^Bearer /, "").split(".");
    assert.equal(claims(header).alg, "EdDSA");
    assert.equal(claims(payload).iss, issuer.url);
    assert.equal(created.headers["x-user-id"], undefined);
    // Tokens came from the page's own origin, with its session cookie.
    const tokens = network
      .entries()
      .filter((entry) => entry.url === `${web.origin}/api/auth/token`);
    assert.ok(tokens.length > 0 && tokens.every((entry) => entry.status === 200));
    const preflight = calls.find(
      (entry) =>
        entry.method === "OPTIONS" &&
        entry.headers["access-control-request-headers"]?.split(",").includes("authorization"),
    );
    assert.equal(preflight?.responseHeaders["access-control-allow-origin"], web.origin);
    await screenshot(page, folder, "03-created");
  });

  it("shows the 401 of a call without a token", async () => {
    const { page, errors } = user;
    await page.click("#anonymous");
    const problem = page.locator(
      '#message[data-status="401"][data-type="urn:todo:problem:missing-token"]',
    );
    await problem.waitFor();
    // The task is still there: the refusal changed nothing.
    await page.locator('#tasks > li[data-title="Buy milk"]').waitFor();
    assert.deepEqual(errors, []);
    await screenshot(page, folder, "04-without-token");
  });
});
