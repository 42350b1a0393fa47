import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";

import type { TaskRead, TodoClient } from "../src/index.js";
import { type Server, startApi } from "./harness.js";
import { newUser, problem } from "./util.js";

let server: Server;

before(async () => {
  server = await startApi();
});
after(() => server.stop());

function user(): TodoClient {
  return newUser(server.url);
}

test("health and readiness", async () => {
  const api = user();
  assert.deepEqual((await api.health()).data, { status: "ok" });
  assert.deepEqual((await api.ready()).data, { status: "ok", database: "ok" });
});

test("create: pending unless a status is given; the ETag and Location come with it", async () => {
  const api = user();
  const created = await api.createTask({ title: "  Buy milk ", description: "2 litres" });
  assert.equal(created.response.status, 201);
  assert.equal(created.data.title, "Buy milk");
  assert.equal(created.data.description, "2 litres");
  assert.equal(created.data.status, "pending");
  assert.equal(created.etag, '"1"');
  assert.equal(created.replayed, false);
  assert.equal(created.response.headers.get("Location"), `/api/tasks/${created.data.id}`);

  const done = await api.createTask({ title: "Already done", status: "completed" });
  assert.equal(done.data.status, "completed");
  assert.equal(done.data.description, null);
});

test("get: the task and its ETag; If-None-Match answers notModified until it changes", async () => {
  const api = user();
  const { data: task, etag } = await api.createTask({ title: "Read" });
  const got = await api.getTask(task.id);
  assert.equal(got.notModified, false);
  assert.deepEqual(got.data, task);
  assert.equal(got.etag, etag);

  const same = await api.getTask(task.id, { ifNoneMatch: etag });
  assert.equal(same.notModified, true);
  assert.equal(same.data, undefined);
  assert.equal(same.etag, etag);

  await api.toggleTask(task.id);
  const changed = await api.getTask(task.id, { ifNoneMatch: etag });
  assert.equal(changed.notModified, false);
  assert.equal(changed.data?.status, "completed");
  assert.equal(changed.etag, '"2"');
});

test("list: newest first, filtered by status, one page with no next link", async () => {
  const api = user();
  const first = await api.createTask({ title: "first" });
  const second = await api.createTask({ title: "second", status: "completed" });
  const page = await api.listTasks();
  assert.deepEqual(
    page.data.map((task) => task.id),
    [second.data.id, first.data.id],
  );
  assert.equal(page.nextCursor, undefined);
  const pending = await api.listTasks({ status: "pending" });
  assert.deepEqual(
    pending.data.map((task) => task.title),
    ["first"],
  );
});

test("pagination: 250 tasks, pages of 100, every task once and in order, to the end", async () => {
  const api = user();
  const created: TaskRead[] = [];
  for (let i = 0; i < 250; i += 1)
    created.push((await api.createTask({ title: `task ${i}` })).data);

  const sizes: number[] = [];
  for await (const page of api.pages({ limit: 100 })) sizes.push(page.length);
  assert.deepEqual(sizes, [100, 100, 50]);

  const newestFirst: string[] = [];
  for await (const task of api.allTasks({ limit: 100 })) newestFirst.push(task.id);
  assert.deepEqual(newestFirst, created.map((task) => task.id).reverse());

  // The query holds on every page: oldest first, and only what the search finds.
  const oldestFirst: string[] = [];
  for await (const task of api.allTasks({ limit: 7, sort: "created_at", q: "task 1" }))
    oldestFirst.push(task.title);
  const expected = created.map((task) => task.title).filter((title) => title.includes("task 1"));
  assert.equal(expected.length, 111); // 1, 10-19, 100-199
  assert.deepEqual(oldestFirst, expected);

  const first = await api.listTasks({ limit: 100 });
  assert.match(first.response.headers.get("Link") ?? "", /rel="next"/);
  assert.ok(first.nextCursor);
});

test("update with If-Match; a stale If-Match is a 412 that carries the current ETag", async () => {
  const api = user();
  const { data: task, etag } = await api.createTask({ title: "Draft", description: "notes" });
  const updated = await api.updateTask(
    task.id,
    { title: "Final", description: null },
    { ifMatch: etag },
  );
  assert.equal(updated.data.title, "Final");
  assert.equal(updated.data.description, null);
  assert.equal(updated.data.status, "pending");
  assert.equal(updated.etag, '"2"');

  const stale = await problem(api.updateTask(task.id, { status: "completed" }, { ifMatch: etag }), {
    status: 412,
    type: "urn:todo:problem:stale-version",
  });
  assert.equal(stale.etag, '"2"');
  assert.equal((await api.getTask(task.id)).data?.status, "pending");

  // Without If-Match the last write wins.
  assert.equal((await api.updateTask(task.id, { status: "completed" })).data.status, "completed");
});

test("toggle: pending <-> completed, with If-Match and an Idempotency-Key", async () => {
  const api = user();
  const { data: task, etag } = await api.createTask({ title: "Flip" });
  const key = randomUUID();
  const toggled = await api.toggleTask(task.id, { ifMatch: etag, idempotencyKey: key });
  assert.equal(toggled.data.status, "completed");
  const again = await api.toggleTask(task.id, { ifMatch: etag, idempotencyKey: key });
  assert.equal(again.replayed, true);
  assert.deepEqual(again.data, toggled.data);
  assert.equal((await api.toggleTask(task.id)).data.status, "pending");
});

test("delete with If-Match; the task is gone", async () => {
  const api = user();
  const { data: task, etag } = await api.createTask({ title: "Bin" });
  await problem(api.deleteTask(task.id, { ifMatch: '"9"' }), {
    status: 412,
    type: "urn:todo:problem:stale-version",
  });
  const deleted = await api.deleteTask(task.id, { ifMatch: etag });
  assert.equal(deleted.response.status, 204);
  await problem(api.getTask(task.id), { status: 404, type: "urn:todo:problem:task-not-found" });
  assert.deepEqual((await api.listTasks()).data, []);
});

test("bulk: set every status (or those with one), delete those with a status", async () => {
  const api = user();
  for (const title of ["a", "b", "c"]) await api.createTask({ title });
  await api.createTask({ title: "d", status: "completed" });
  assert.deepEqual((await api.setAllStatuses({ status: "completed" })).data, { updated: 3 });
  assert.deepEqual(
    (await api.setAllStatuses({ status: "pending" }, { status: "completed" })).data,
    { updated: 4 },
  );
  const [newest] = (await api.listTasks()).data;
  await api.toggleTask(newest!.id);
  assert.deepEqual((await api.deleteAll({ status: "completed" })).data, { deleted: 1 });
  assert.deepEqual(
    (await api.listTasks()).data.map((task) => task.title),
    ["c", "b", "a"],
  );
});

test("summary: the counts, and notModified while they stay", async () => {
  const api = user();
  const empty = await api.summarise();
  assert.equal(empty.notModified, false);
  assert.deepEqual(empty.data, { total: 0, pending: 0, completed: 0 });
  await api.createTask({ title: "one" });
  await api.createTask({ title: "two", status: "completed" });
  const counts = await api.summarise();
  assert.deepEqual(counts.data, { total: 2, pending: 1, completed: 1 });
  assert.ok(counts.etag);
  assert.equal((await api.summarise({ ifNoneMatch: counts.etag })).notModified, true);
  await api.createTask({ title: "three" });
  const later = await api.summarise({ ifNoneMatch: counts.etag });
  assert.equal(later.notModified, false);
  assert.deepEqual(later.data, { total: 3, pending: 2, completed: 1 });
});

test("search and sort", async () => {
  const api = user();
  const school = await api.createTask({ title: "École", description: "rentrée" });
  const street = await api.createTask({ title: "Walk", description: "down the Straße" });
  await api.createTask({ title: "Other" });
  const titles = async (query: Parameters<TodoClient["listTasks"]>[0]) =>
    (await api.listTasks(query)).data.map((task) => task.title);
  assert.deepEqual(await titles({ q: "ÉCOLE" }), ["École"]);
  assert.deepEqual(await titles({ q: "STRASSE" }), ["Walk"]);
  assert.deepEqual(await titles({ sort: "created_at" }), ["École", "Walk", "Other"]);
  await api.updateTask(school.data.id, { description: "cours" });
  assert.deepEqual(await titles({ sort: "-updated_at" }), ["École", "Other", "Walk"]);
  assert.equal(street.data.status, "pending");
});

test("move: first, or right after another task, in the user's own order", async () => {
  const api = user();
  const a = (await api.createTask({ title: "a" })).data;
  const b = (await api.createTask({ title: "b" })).data;
  const c = (await api.createTask({ title: "c" })).data;
  const order = async () =>
    (await api.listTasks({ sort: "position" })).data.map((task) => task.title);
  assert.deepEqual(await order(), ["c", "b", "a"]);

  const moved = await api.moveTask(c.id, { after: a.id }, { ifMatch: '"1"' });
  assert.equal(moved.etag, '"2"');
  assert.deepEqual(await order(), ["b", "a", "c"]);
  await api.moveTask(a.id, { after: null });
  assert.deepEqual(await order(), ["a", "b", "c"]);
  await problem(api.moveTask(b.id, { after: c.id }, { ifMatch: '"7"' }), {
    status: 412,
    type: "urn:todo:problem:stale-version",
  });
  // Positions compare as plain strings.
  const listed = (await api.listTasks({ sort: "position" })).data;
  assert.deepEqual(
    [...listed].sort((x, y) => (x.position < y.position ? -1 : 1)).map((task) => task.id),
    [a.id, b.id, c.id],
  );
});

test("Idempotency-Key: the same create twice makes one task", async () => {
  const api = user();
  const key = randomUUID();
  const first = await api.createTask({ title: "Once" }, { idempotencyKey: key });
  const second = await api.createTask({ title: "Once" }, { idempotencyKey: key });
  assert.equal(first.replayed, false);
  assert.equal(second.replayed, true);
  assert.equal(second.response.status, 201);
  assert.deepEqual(second.data, first.data);
  assert.equal(second.etag, first.etag);
  assert.equal((await api.listTasks()).data.length, 1);
});
