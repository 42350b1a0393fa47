// The stream parser and its reconnects, on hand-made responses: what a proxy or a network may do
// to the bytes that the live server never does.
import assert from "node:assert/strict";
import { test } from "node:test";

import { nextCursor } from "../src/index.js";
import { type StreamEvent, streamChanges } from "../src/stream.js";

const A = "A".repeat(32);
const B = "B".repeat(32);

function sse(chunks: string[], status = 200, headers: Record<string, string> = {}): Response {
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
  return new Response(body, {
    status,
    headers: { "Content-Type": "text/event-stream", ...headers },
  });
}

function problem(status: number, type: string, headers: Record<string, string> = {}): Response {
  const body = JSON.stringify({ type, title: "t", status, detail: "d" });
  return new Response(body, {
    status,
    headers: { "Content-Type": "application/problem+json", ...headers },
  });
}

async function take(events: AsyncGenerator<StreamEvent>, count: number): Promise<StreamEvent[]> {
  const taken: StreamEvent[] = [];
  for await (const event of events) {
    taken.push(event);
    if (taken.length === count) break;
  }
  return taken;
}

test("events split anywhere, CRLF and CR line ends, comments, multi-line data", async () => {
  const text =
    ": heartbeat\r\n\r\nevent: changes\r\nid: " +
    A +
    '\r\ndata: {"changes":\r\ndata: [{"op":"delete","id":"x"}]}\r\n\r\n' +
    "event: ready\rid: " +
    A +
    '\rdata: {"cursor":"' +
    A +
    '"}\r\revent: unknown\ndata: {}\n\n';
  const chunks = [...text].reduce<string[]>((parts, char, i) => {
    if (i % 7 === 0) parts.push("");
    parts[parts.length - 1] += char;
    return parts;
  }, []);
  const seen = await take(
    streamChanges(async () => sse(chunks)),
    2,
  );
  assert.deepEqual(seen, [
    { type: "changes", changes: [{ op: "delete", id: "x" }], cursor: A },
    { type: "ready", cursor: A },
  ]);
});

test("a broken connection and a 503 are retried from the last cursor; a 410 resets", async () => {
  const cursors: (string | null)[] = [];
  const answers = [
    () => sse([`event: changes\nid: ${A}\ndata: {"changes":[]}\n\nevent: chan`]),
    () => Promise.reject(new TypeError("fetch failed")),
    () => problem(503, "urn:todo:problem:database-unavailable", { "Retry-After": "0" }),
    () => problem(410, "urn:todo:problem:sync-cursor-expired"),
    () => sse([`event: ready\nid: ${B}\ndata: {"cursor":"${B}"}\n\n`]),
  ];
  const events = streamChanges(
    async (cursor) => {
      cursors.push(cursor);
      return answers.shift()!();
    },
    { backoff: () => 10 },
  );
  const started = Date.now();
  const seen = await take(events, 3);
  assert.deepEqual(
    seen.map((event) => event.type),
    ["changes", "reset", "ready"],
  );
  assert.deepEqual(cursors, [null, A, A, A, null]);
  assert.ok(Date.now() - started < 2000);
});

test("an error that waiting cannot mend is thrown", async () => {
  const events = streamChanges(async () => problem(401, "urn:todo:problem:invalid-token"));
  await assert.rejects(events.next(), { name: "ProblemError", status: 401 });
});

test("nextCursor reads the next link's cursor", () => {
  assert.equal(nextCursor('<http://h/api/tasks?limit=2&cursor=1.ab>; rel="next"'), "1.ab");
  assert.equal(
    nextCursor('</api/tasks?cursor=2.cd>; rel="prev", </api/tasks?cursor=3.ef>; rel=next'),
    "3.ef",
  );
  assert.equal(nextCursor(null), undefined);
  assert.equal(nextCursor('</api/tasks?cursor=2.cd>; rel="prev"'), undefined);
});
