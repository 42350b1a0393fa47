// JWT mode against the real Better Auth issuer: its tokens, fetched fresh for each call.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { TodoClient } from "../src/index.js";
import { type Server, signUp, startApi, startBetterAuth } from "./harness.js";
import { problem } from "./util.js";

let issuer: Server;
let server: Server;

before(async () => {
  issuer = await startBetterAuth();
  server = await startApi({
    AUTH_MODE: "jwt",
    AUTH_JWKS_URL: `${issuer.url}/api/auth/jwks`,
    // Better Auth signs with its base URL as issuer and audience.
    AUTH_ISSUER: issuer.url,
    AUTH_AUDIENCE: issuer.url,
  });
});
after(async () => {
  await server.stop();
  await issuer.stop();
});

test("a Better Auth token for every call, each user to their own tasks", async () => {
  const alice = await signUp(issuer.url, "alice");
  let fetched = 0;
  const api = new TodoClient({
    baseUrl: server.url,
    auth: {
      token: () => {
        fetched += 1;
        return alice.token();
      },
    },
  });
  const { data: task, etag } = await api.createTask({ title: "Buy milk" });
  assert.equal((await api.getTask(task.id, { ifNoneMatch: etag })).notModified, true);
  assert.deepEqual(
    (await api.listTasks()).data.map((listed) => listed.id),
    [task.id],
  );
  assert.equal(fetched, 3);

  const bob = new TodoClient({
    baseUrl: server.url,
    auth: { token: (await signUp(issuer.url, "bob")).token },
  });
  assert.deepEqual((await bob.listTasks()).data, []);
  await problem(bob.getTask(task.id), { status: 404, type: "urn:todo:problem:task-not-found" });
});

test("the stream sends the bearer token that EventSource cannot", async () => {
  const carol = await signUp(issuer.url, "carol");
  const api = new TodoClient({ baseUrl: server.url, auth: { token: carol.token } });
  const control = new AbortController();
  const events = api.streamChanges({ signal: control.signal });
  assert.equal((await events.next()).value?.type, "ready");
  await api.createTask({ title: "live" });
  const event = (await events.next()).value;
  assert.ok(event?.type === "changes");
  assert.deepEqual(
    event.changes.map((change) => change.op === "upsert" && change.task.title),
    ["live"],
  );
  control.abort();
});

test("a refused token is fetched again once; the next one serves", async () => {
  const dave = await signUp(issuer.url, "dave");
  const tokens = ["expired.or.garbage"];
  const api = new TodoClient({
    baseUrl: server.url,
    auth: { token: () => tokens.shift() ?? dave.token() },
  });
  assert.equal((await api.createTask({ title: "after a retry" })).response.status, 201);
  assert.deepEqual(tokens, []);
});

test("401 missing-token and invalid-token", async () => {
  const signedOut = new TodoClient({ baseUrl: server.url, auth: { token: () => null } });
  const missing = await problem(signedOut.listTasks(), {
    status: 401,
    type: "urn:todo:problem:missing-token",
  });
  assert.equal(missing.response.headers.get("WWW-Authenticate"), 'Bearer realm="todo"');
  const anonymous = new TodoClient({ baseUrl: server.url });
  await problem(anonymous.createTask({ title: "x" }), {
    status: 401,
    type: "urn:todo:problem:missing-token",
  });

  const forged = new TodoClient({ baseUrl: server.url, auth: { token: () => "not.a.jwt" } });
  const invalid = await problem(forged.listTasks(), {
    status: 401,
    type: "urn:todo:problem:invalid-token",
  });
  assert.match(invalid.response.headers.get("WWW-Authenticate") ?? "", /error="invalid_token"/);
  await problem(forged.streamChanges().next(), {
    status: 401,
    type: "urn:todo:problem:invalid-token",
  });
});
