/**
 * The change stream (`GET /api/tasks/stream`) as an async iterator, over `fetch`.
 *
 * Hand-written because the generated SSE helper cannot serve it: it yields the data without the
 * event's name or id, throws a bare `Error` without the problem on a refused connect (so a 410
 * cannot be told from a 503), and stops when the server ends the stream, which this server does
 * every few minutes by design. `EventSource` is no substitute: it cannot send a bearer token.
 */
import { ProblemError } from "./errors.js";
import type { ReadChangesResponses } from "./generated/types.gen.js";

/** One element of the feed and the stream: a task as it is now, or the id of a deleted one. */
export type Change = ReadChangesResponses[200]["changes"][number];

export type StreamEvent =
  /** Changes to apply in order; `cursor` is where the client then stands (safe to store). */
  | { type: "changes"; changes: Change[]; cursor: string }
  /** The catch-up is done: every later event is live. */
  | { type: "ready"; cursor: string }
  /**
   * The cursor can no longer be served (410, or one the API did not issue): drop the local copy;
   * the stream starts over from the snapshot, whose changes follow.
   */
  | { type: "reset" };

export interface StreamOptions {
  /** Where to start: a cursor from the feed or an earlier event. Without it, the snapshot. */
  since?: string | null;
  /** Ends the iteration (and the connection). */
  signal?: AbortSignal;
  /**
   * Failed connects in a row (network errors, 429, 502-504) after which the iterator throws
   * instead of waiting and trying again. Default: never give up.
   */
  maxFailures?: number;
  /**
   * Milliseconds to wait after `failures` failed connects in a row (at least `Retry-After`).
   * Default: about 1 s, doubling to at most 30 s, at random within the upper half.
   */
  backoff?: (failures: number) => number;
}

/** Opens one stream from `cursor` (sent as `Last-Event-ID`); the caller adds the credentials. */
export type Connect = (cursor: string | null, signal: AbortSignal | undefined) => Promise<Response>;

const INVALID_CURSOR = "urn:todo:problem:invalid-cursor";
const TRANSIENT = new Set([429, 502, 503, 504]);

/**
 * Every event of the stream, reconnecting whenever the server ends it (its age limit, a token's
 * expiry, a restart) with the last cursor, so nothing is missed and nothing repeats.
 */
export async function* streamChanges(
  connect: Connect,
  { since = null, signal, maxFailures = Infinity, backoff = exponential }: StreamOptions = {},
): AsyncGenerator<StreamEvent, void, undefined> {
  let cursor = since;
  let failures = 0;
  const failed = async (error: unknown, retryAfterSeconds = 0): Promise<void> => {
    failures += 1;
    if (failures > maxFailures) throw error;
    await sleep(Math.max(backoff(failures), retryAfterSeconds * 1000), signal);
  };

  while (!signal?.aborted) {
    let response: Response;
    try {
      response = await connect(cursor, signal);
    } catch (error) {
      if (signal?.aborted) return;
      await failed(error);
      continue;
    }
    if (!response.ok) {
      const problem = await ProblemError.from(response);
      if (cursor !== null && (problem.status === 410 || problem.type === INVALID_CURSOR)) {
        cursor = null;
        yield { type: "reset" };
        continue;
      }
      if (!TRANSIENT.has(problem.status)) throw problem;
      await failed(problem, problem.retryAfter);
      continue;
    }
    let ready = false;
    try {
      for await (const event of readEvents(response)) {
        if (event.name === "changes" && event.id !== "") {
          cursor = event.id;
          const { changes } = JSON.parse(event.data) as { changes: Change[] };
          yield { type: "changes", changes, cursor };
        } else if (event.name === "ready") {
          cursor = (JSON.parse(event.data) as { cursor: string }).cursor;
          ready = true;
          failures = 0;
          yield { type: "ready", cursor };
        }
      }
    } catch (error) {
      // The connection broke: reconnect from the last cursor.
      if (signal?.aborted) return;
      await failed(error);
      continue;
    }
    // The server ended the stream: reconnect soon, spread out, as the server asks.
    if (ready) await sleep(250 + Math.random() * 1000, signal);
    else await failed(new Error("the stream ended before it was ready"));
  }
}

function exponential(failures: number): number {
  return Math.min(30_000, 500 * 2 ** failures) * (0.5 + Math.random() / 2);
}

interface ServerSentEvent {
  name: string;
  id: string;
  data: string;
}

/** The events of a `text/event-stream` body, parsed as the HTML standard says. */
async function* readEvents(response: Response): AsyncGenerator<ServerSentEvent, void, undefined> {
  if (response.body === null) return;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let lastId = "";
  let name = "";
  let data: string[] = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end: number;
      while ((end = buffer.search(/\r\n|\r|\n/)) >= 0) {
        // A lone \r at the end of the buffer may be the first half of \r\n.
        if (buffer[end] === "\r" && end === buffer.length - 1) break;
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + (buffer.startsWith("\r\n", end) ? 2 : 1));
        if (line === "") {
          if (data.length > 0) yield { name: name || "message", id: lastId, data: data.join("\n") };
          name = "";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") name = text;
        else if (field === "data") data.push(text);
        else if (field === "id" && !text.includes("\0")) lastId = text;
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
