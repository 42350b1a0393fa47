import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import type { StreamEvent } from "../src/index.js";
import { type Server, startApi } from "./harness.js";
import { newUser, problem } from "./util.js";

let server: Server;

before(async () => {
  // Streams end after 2 s (the client reconnects) and send a heartbeat every second.
  server = await startApi({ SYNC_STREAM_MAX_SECONDS: "2", SYNC_HEARTBEAT_SECONDS: "1" });
});
after(() => server.stop());

/** The next event, failing the test rather than waiting for ever. */
async function next(events: AsyncGenerator<StreamEvent>, seconds = 10): Promise<StreamEvent> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no event within ${seconds} s`)), seconds * 1000);
  });
  try {
    const result = await Promise.race([events.next(), timeout]);
    assert.equal(result.done, false, "the stream ended");
    return result.value as StreamEvent;
  } finally {
    clearTimeout(timer);
  }
}

function summary(event: StreamEvent): string[] {
  if (event.type !== "changes") return [event.type];
  return event.changes.map((change) =>
    change.op === "upsert" ? `upsert ${change.task.title}` : `delete ${change.id}`,
  );
}

test("the feed: the snapshot, then what changed since its cursor, deletes included", async () => {
  const api = newUser(server.url);
  const kept = (await api.createTask({ title: "kept" })).data;
  const gone = (await api.createTask({ title: "gone" })).data;
  const snapshot = (await api.readChanges()).data;
  assert.equal(snapshot.has_more, false);
  assert.deepEqual(
    snapshot.changes.map((change) => change.op === "upsert" && change.task.id),
    [kept.id, gone.id],
  );

  await api.deleteTask(gone.id);
  await api.updateTask(kept.id, { title: "kept, renamed" });
  const since = (await api.readChanges({ since: snapshot.cursor })).data;
  assert.deepEqual(since.changes, [
    { op: "delete", id: gone.id },
    { op: "upsert", task: (await api.getTask(kept.id)).data },
  ]);
  const empty = (await api.readChanges({ since: since.cursor })).data;
  assert.deepEqual(empty, { changes: [], cursor: since.cursor, has_more: false });

  // Paged: has_more until the last page.
  for (let i = 0; i < 3; i += 1) await api.createTask({ title: `more ${i}` });
  const first = (await api.readChanges({ since: since.cursor, limit: 2 })).data;
  assert.equal(first.has_more, true);
  const rest = (await api.readChanges({ since: first.cursor, limit: 2 })).data;
  assert.equal(rest.has_more, false);
  assert.equal(first.changes.length + rest.changes.length, 3);

  // A long poll answers as soon as a change commits.
  const waiting = api.readChanges({ since: rest.cursor, wait: 10 });
  await api.createTask({ title: "awaited" });
  assert.deepEqual(
    (await waiting).data.changes.map((change) => change.op),
    ["upsert"],
  );
});

test("the stream: the catch-up, ready, then each write live", async () => {
  const api = newUser(server.url);
  await api.createTask({ title: "before" });
  const control = new AbortController();
  const events = api.streamChanges({ signal: control.signal });
  const catchUp = await next(events);
  assert.deepEqual(summary(catchUp), ["upsert before"]);
  const ready = await next(events);
  assert.equal(ready.type, "ready");
  assert.equal(
    ready.type === "ready" && catchUp.type === "changes" && ready.cursor,
    catchUp.type === "changes" && catchUp.cursor,
  );

  const live = (await api.createTask({ title: "live" })).data;
  assert.deepEqual(summary(await next(events)), ["upsert live"]);
  await api.deleteTask(live.id);
  assert.deepEqual(summary(await next(events)), [`delete ${live.id}`]);
  await api.setAllStatuses({ status: "completed" });
  const bulk = await next(events);
  assert.deepEqual(summary(bulk), ["upsert before"]);

  control.abort();
  assert.equal((await events.next()).done, true);
});

test("the stream resumes with Last-Event-ID after the server ends it: nothing missed, nothing twice", async () => {
  const connects: (string | null)[] = [];
  let reconnecting: () => void = () => {};
  const reconnected = new Promise<void>((resolve) => (reconnecting = resolve));
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  // Holds the second connect until the test has written while the stream was down.
  const watching: typeof fetch = async (input, init) => {
    const request = new Request(input, init);
    if (new URL(request.url).pathname === "/api/tasks/stream") {
      connects.push(request.headers.get("Last-Event-ID"));
      if (connects.length === 2) {
        reconnecting();
        await released;
      }
    }
    return fetch(request);
  };
  const api = newUser(server.url, watching);
  const control = new AbortController();
  const events = api.streamChanges({ signal: control.signal });
  assert.equal((await next(events)).type, "ready");
  await api.createTask({ title: "seen live" });
  const live = await next(events);
  assert.deepEqual(summary(live), ["upsert seen live"]);

  // The iterator reads on (and reconnects) only when asked for the next event.
  const afterReconnect = next(events);
  await reconnected; // the server ended the first stream after 2 s
  assert.equal(connects[0], null);
  assert.equal(connects[1], live.type === "changes" ? live.cursor : "");
  // Only stream connects are held: this write happens while the stream is down.
  await api.createTask({ title: "while away" });
  release();
  assert.deepEqual(summary(await afterReconnect), ["upsert while away"]);
  assert.equal((await next(events)).type, "ready");
  control.abort();
  assert.equal((await events.next()).done, true);
});

test("the stream starts after `since`", async () => {
  const api = newUser(server.url);
  await api.createTask({ title: "old" });
  const { cursor } = (await api.readChanges()).data;
  await api.createTask({ title: "new" });
  const control = new AbortController();
  const events = api.streamChanges({ since: cursor, signal: control.signal });
  assert.deepEqual(summary(await next(events)), ["upsert new"]);
  assert.equal((await next(events)).type, "ready");
  control.abort();
});

test("a cursor the stream cannot serve (410) resets, then the snapshot follows", async () => {
  const api = newUser(server.url);
  await api.createTask({ title: "mine" });
  const { cursor: theirs } = (await newUser(server.url).readChanges()).data;
  await problem(api.readChanges({ since: theirs }), {
    status: 410,
    type: "urn:todo:problem:sync-cursor-expired",
  });

  const control = new AbortController();
  const events = api.streamChanges({ since: theirs, signal: control.signal });
  assert.equal((await next(events)).type, "reset");
  assert.deepEqual(summary(await next(events)), ["upsert mine"]);
  assert.equal((await next(events)).type, "ready");
  control.abort();

  // A cursor the API never issued: the same.
  const invalid = api.streamChanges({ since: "not-a-cursor" });
  assert.equal((await next(invalid)).type, "reset");
  await invalid.return();
});

test("breaking out of the loop closes the stream", async () => {
  const api = newUser(server.url);
  await api.createTask({ title: "one" });
  const seen: string[] = [];
  for await (const event of api.streamChanges()) {
    seen.push(...summary(event));
    if (event.type === "ready") break;
  }
  assert.deepEqual(seen, ["upsert one", "ready"]);
});
