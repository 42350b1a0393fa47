// Every problem a user can cause, as the typed error the client throws.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";

import { ProblemError, TodoClient } from "../src/index.js";
import { type Server, startApi } from "./harness.js";
import { newUser, problem } from "./util.js";

let server: Server;
// Writes need If-Match, 5 requests a minute per user, one open stream.
let strict: Server;

before(async () => {
  [server, strict] = await Promise.all([
    startApi(),
    startApi({ REQUIRE_IF_MATCH: "true", RATE_LIMIT: "5/m", SYNC_MAX_STREAMS: "1" }),
  ]);
});
after(() => Promise.all([server.stop(), strict.stop()]));

/** A request the typed methods cannot make, through the client's authenticated fetch. */
async function raw(api: TodoClient, path: string, init: RequestInit = {}): Promise<ProblemError> {
  const response = await api.fetch(`${server.url}${path}`, init);
  assert.equal(response.ok, false);
  return ProblemError.from(response);
}

test("400 invalid-user-id: header mode without a UUID", async () => {
  const api = new TodoClient({ baseUrl: server.url, auth: { userId: "not-a-uuid" } });
  await problem(api.listTasks(), { status: 400, type: "urn:todo:problem:invalid-user-id" });
  const anonymous = new TodoClient({ baseUrl: server.url });
  await problem(anonymous.createTask({ title: "x" }), {
    status: 400,
    type: "urn:todo:problem:invalid-user-id",
  });
});

test("400 malformed-body and 415: what the typed methods never send", async () => {
  const api = newUser(server.url);
  const malformed = await raw(api, "/api/tasks", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: '{"title": ',
  });
  assert.equal(malformed.status, 400);
  assert.equal(malformed.type, "urn:todo:problem:malformed-body");
  const notJson = await raw(api, "/api/tasks", {
    method: "POST",
    headers: { "Content-Type": "text/plain" },
    body: "title=x",
  });
  assert.equal(notJson.status, 415);
  assert.equal(notJson.type, "about:blank");
  assert.match(notJson.detail, /JSON/);
});

test("400 invalid-cursor and 410 sync-cursor-expired: the feed's cursors", async () => {
  const api = newUser(server.url);
  await problem(api.readChanges({ since: "not-a-cursor" }), {
    status: 400,
    type: "urn:todo:problem:invalid-cursor",
  });
  const other = newUser(server.url);
  const { cursor } = (await other.readChanges()).data;
  await problem(api.readChanges({ since: cursor }), {
    status: 410,
    type: "urn:todo:problem:sync-cursor-expired",
  });
});

test("400 cursor-sort-mismatch: a list cursor of another order", async () => {
  const api = newUser(server.url);
  for (const title of ["a", "b"]) await api.createTask({ title });
  const { nextCursor } = await api.listTasks({ limit: 1 });
  assert.ok(nextCursor);
  await problem(api.listTasks({ cursor: nextCursor, sort: "created_at" }), {
    status: 400,
    type: "urn:todo:problem:cursor-sort-mismatch",
  });
});

test("400 invalid-idempotency-key", async () => {
  const api = newUser(server.url);
  await problem(api.createTask({ title: "x" }, { idempotencyKey: "k".repeat(256) }), {
    status: 400,
    type: "urn:todo:problem:invalid-idempotency-key",
  });
});

test("404 task-not-found: no such task, or another user's", async () => {
  const api = newUser(server.url);
  const other = newUser(server.url);
  const theirs = (await other.createTask({ title: "theirs" })).data;
  for (const id of [randomUUID(), theirs.id]) {
    const error = await problem(api.getTask(id), {
      status: 404,
      type: "urn:todo:problem:task-not-found",
    });
    assert.equal(error.instance, `/api/tasks/${id}`);
    await problem(api.updateTask(id, { title: "mine" }), {
      status: 404,
      type: "urn:todo:problem:task-not-found",
    });
    await problem(api.toggleTask(id), { status: 404, type: "urn:todo:problem:task-not-found" });
    await problem(api.moveTask(id, { after: null }), {
      status: 404,
      type: "urn:todo:problem:task-not-found",
    });
    await problem(api.deleteTask(id), { status: 404, type: "urn:todo:problem:task-not-found" });
  }
  const mine = (await api.createTask({ title: "mine" })).data;
  await problem(api.moveTask(mine.id, { after: theirs.id }), {
    status: 404,
    type: "urn:todo:problem:task-not-found",
  });
});

test("404 and 405 about:blank: an unknown path, a method the path lacks", async () => {
  const api = newUser(server.url);
  const missing = await raw(api, "/api/nothing");
  assert.equal(missing.status, 404);
  assert.equal(missing.type, "about:blank");
  const method = await raw(api, "/api/tasks", { method: "PUT" });
  assert.equal(method.status, 405);
  assert.match(method.response.headers.get("Allow") ?? "", /GET/);
});

test("412 stale-version: a write or move with an old ETag", async () => {
  const api = newUser(server.url);
  const { data: task, etag } = await api.createTask({ title: "x" });
  await api.toggleTask(task.id);
  for (const call of [
    () => api.updateTask(task.id, { title: "y" }, { ifMatch: etag }),
    () => api.toggleTask(task.id, { ifMatch: etag }),
    () => api.moveTask(task.id, { after: null }, { ifMatch: etag }),
    () => api.deleteTask(task.id, { ifMatch: etag }),
  ]) {
    const error = await problem(call(), { status: 412, type: "urn:todo:problem:stale-version" });
    assert.equal(error.etag, '"2"');
  }
});

test("413: a body over MAX_BODY_BYTES", async () => {
  const api = newUser(server.url);
  const error = await problem(
    api.createTask({ title: "big", description: "x".repeat(1_100_000) }),
    {
      status: 413,
      type: "about:blank",
    },
  );
  assert.deepEqual(error.errors, []);
});

test("422 validation: each invalid field named in errors", async () => {
  const api = newUser(server.url);
  const body = await problem(api.createTask({ title: " ", description: "x".repeat(2001) }), {
    status: 422,
    type: "urn:todo:problem:validation",
  });
  assert.deepEqual(
    body.errors.map((error) => [error.loc, error.pointer]),
    [
      [["body", "title"], "#/title"],
      [["body", "description"], "#/description"],
    ],
  );
  for (const error of body.errors) {
    assert.ok(error.detail.length > 0);
    assert.ok(error.type.length > 0);
  }

  const query = await problem(api.listTasks({ limit: 0 }), {
    status: 422,
    type: "urn:todo:problem:validation",
  });
  assert.deepEqual(query.errors[0]?.loc, ["query", "limit"]);
  const path = await problem(api.getTask("not-a-uuid"), {
    status: 422,
    type: "urn:todo:problem:validation",
  });
  assert.deepEqual(path.errors[0]?.loc, ["path", "task_id"]);
  await problem(api.updateTask(randomUUID(), {}), {
    status: 422,
    type: "urn:todo:problem:validation",
  });
  await problem(api.readChanges({ wait: 61 }), {
    status: 422,
    type: "urn:todo:problem:validation",
  });

  const task = (await api.createTask({ title: "x" })).data;
  const itself = await problem(api.moveTask(task.id, { after: task.id }), {
    status: 422,
    type: "urn:todo:problem:validation",
  });
  assert.equal(itself.errors.length, 1);
});

test("422 idempotency-key-reused: one key, two different requests", async () => {
  const api = newUser(server.url);
  const key = randomUUID();
  await api.createTask({ title: "first" }, { idempotencyKey: key });
  await problem(api.createTask({ title: "second" }, { idempotencyKey: key }), {
    status: 422,
    type: "urn:todo:problem:idempotency-key-reused",
  });
});

test("428 if-match-required: REQUIRE_IF_MATCH and a write without it", async () => {
  const api = newUser(strict.url);
  const { data: task, etag } = await api.createTask({ title: "x" });
  await problem(api.updateTask(task.id, { title: "y" }), {
    status: 428,
    type: "urn:todo:problem:if-match-required",
  });
  await problem(api.deleteTask(task.id), {
    status: 428,
    type: "urn:todo:problem:if-match-required",
  });
  assert.equal((await api.toggleTask(task.id, { ifMatch: etag })).data.status, "completed");
});

test("429 rate-limited: over the per-user limit, with Retry-After", async () => {
  const api = newUser(strict.url);
  for (let i = 0; i < 5; i += 1) await api.listTasks();
  const error = await problem(api.listTasks(), {
    status: 429,
    type: "urn:todo:problem:rate-limited",
  });
  assert.ok(error.retryAfter !== undefined && error.retryAfter >= 1);
  // Another user has a bucket of their own.
  await newUser(strict.url).listTasks();
});

test("503 too-many-streams: one stream more than the worker holds", async () => {
  const api = newUser(strict.url);
  const control = new AbortController();
  const open = api.streamChanges({ signal: control.signal });
  assert.equal((await open.next()).value?.type, "ready");
  const error = await problem(newUser(strict.url).streamChanges({ maxFailures: 0 }).next(), {
    status: 503,
    type: "urn:todo:problem:too-many-streams",
  });
  assert.equal(error.retryAfter, 5);
  control.abort();
  assert.equal((await open.next()).done, true);
});
