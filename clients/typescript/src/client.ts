import { type Auth, authenticatedFetch } from "./auth.js";
import { ProblemError } from "./errors.js";
import { createClient, createConfig, type Client } from "./generated/client/index.js";
import * as sdk from "./generated/sdk.gen.js";
import type {
  CreateTaskData,
  CreateTaskResponses,
  DeleteAllData,
  DeleteAllResponses,
  DeleteTaskResponses,
  GetTaskResponses,
  HealthResponses,
  ListTasksData,
  ListTasksResponses,
  MoveTaskData,
  MoveTaskResponses,
  ReadChangesData,
  ReadChangesResponses,
  ReadyResponses,
  SetAllStatusesData,
  SetAllStatusesResponses,
  SummariseResponses,
  TaskRead,
  ToggleTaskResponses,
  UpdateTaskData,
  UpdateTaskResponses,
} from "./generated/types.gen.js";
import { followPages, nextCursor } from "./pages.js";
import { type StreamEvent, type StreamOptions, streamChanges } from "./stream.js";

export interface TodoClientOptions {
  /** Where the API is, e.g. `http://127.0.0.1:8000` (a path prefix is kept). */
  baseUrl: string;
  /** Who the calls act for; without it, requests carry no credentials. */
  auth?: Auth;
  /** The `fetch` to send requests with (default: the global one). */
  fetch?: typeof globalThis.fetch;
}

/** The request headers the API reads, by name; each method takes those its operation has. */
export interface CallOptions {
  /** `If-Match`: write only while the task is at this ETag (a list, or `*`); else a 412. */
  ifMatch?: string;
  /** `If-None-Match`: `notModified` (a 304) while the ETag still matches. */
  ifNoneMatch?: string;
  /** `Idempotency-Key`: a retry with the same key gets the first answer back and writes nothing. */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

/** A successful answer: the body, the headers a client acts on, and the response itself. */
export interface Reply<T> {
  data: T;
  /** The `ETag`, where the operation has one: send it back as `ifMatch` or `ifNoneMatch`. */
  etag: string | undefined;
  /** `Idempotent-Replayed: true`: the stored answer to an earlier request with the same key. */
  replayed: boolean;
  response: Response;
}

/** The answer to a conditional read: the body, or `notModified` (a 304, without one). */
export type Conditional<T> =
  | (Reply<T> & { notModified: false })
  | { notModified: true; data: undefined; etag: string | undefined; response: Response };

/** One page of tasks; `nextCursor` is the `Link: rel="next"` page's cursor, if there is one. */
export type Page = Reply<TaskRead[]> & { nextCursor: string | undefined };

type ListQuery = Omit<NonNullable<ListTasksData["query"]>, "cursor">;

/**
 * The Todo API, one method per operation of the contract, each typed from the generated code.
 * Every error answer is thrown as a {@link ProblemError}.
 */
export class TodoClient {
  /** The generated client, for what the methods do not cover. */
  readonly client: Client;
  /** `fetch` with the credentials added, for requests the methods do not make. */
  readonly fetch: typeof globalThis.fetch;

  constructor(options: TodoClientOptions) {
    this.fetch = authenticatedFetch(options.auth, options.fetch);
    this.client = createClient(createConfig({ baseUrl: options.baseUrl, fetch: this.fetch }));
  }

  health(options: Pick<CallOptions, "signal"> = {}): Promise<Reply<HealthResponses[200]>> {
    return reply(sdk.health({ client: this.client, signal: options.signal }));
  }

  ready(options: Pick<CallOptions, "signal"> = {}): Promise<Reply<ReadyResponses[200]>> {
    return reply(sdk.ready({ client: this.client, signal: options.signal }));
  }

  /** One page, newest first unless `sort` says otherwise; `cursor` from the last `nextCursor`. */
  async listTasks(
    query?: ListTasksData["query"],
    options: Pick<CallOptions, "signal"> = {},
  ): Promise<Page> {
    const answer = await reply<ListTasksResponses[200]>(
      sdk.listTasks({ client: this.client, query, headers: headers({}), signal: options.signal }),
    );
    return { ...answer, nextCursor: nextCursor(answer.response.headers.get("Link")) };
  }

  /** Every page of a query, following `Link: rel="next"` to the last. */
  pages(
    query?: ListQuery,
    options: Pick<CallOptions, "signal"> = {},
  ): AsyncGenerator<TaskRead[], void, undefined> {
    return followPages((cursor) => this.listTasks({ ...query, cursor }, options));
  }

  /** Every task of a query, page after page. */
  async *allTasks(
    query?: ListQuery,
    options: Pick<CallOptions, "signal"> = {},
  ): AsyncGenerator<TaskRead, void, undefined> {
    for await (const page of this.pages(query, options)) yield* page;
  }

  createTask(
    body: CreateTaskData["body"],
    options: Pick<CallOptions, "idempotencyKey" | "signal"> = {},
  ): Promise<Reply<CreateTaskResponses[201]>> {
    return reply(
      sdk.createTask({
        client: this.client,
        body,
        headers: headers({ "Idempotency-Key": options.idempotencyKey }),
        signal: options.signal,
      }),
    );
  }

  getTask(
    taskId: string,
    options: Pick<CallOptions, "ifNoneMatch" | "signal"> = {},
  ): Promise<Conditional<GetTaskResponses[200]>> {
    return conditional(
      sdk.getTask({
        client: this.client,
        path: { task_id: taskId },
        headers: headers({ "If-None-Match": options.ifNoneMatch }),
        signal: options.signal,
      }),
    );
  }

  /** Changes the fields given; the others keep their value (`description: null` clears it). */
  updateTask(
    taskId: string,
    body: UpdateTaskData["body"],
    options: Pick<CallOptions, "ifMatch" | "signal"> = {},
  ): Promise<Reply<UpdateTaskResponses[200]>> {
    return reply(
      sdk.updateTask({
        client: this.client,
        path: { task_id: taskId },
        body,
        headers: headers({ "If-Match": options.ifMatch }),
        signal: options.signal,
      }),
    );
  }

  /** pending <-> completed. */
  toggleTask(
    taskId: string,
    options: Pick<CallOptions, "ifMatch" | "idempotencyKey" | "signal"> = {},
  ): Promise<Reply<ToggleTaskResponses[200]>> {
    return reply(
      sdk.toggleTask({
        client: this.client,
        path: { task_id: taskId },
        headers: headers({
          "If-Match": options.ifMatch,
          "Idempotency-Key": options.idempotencyKey,
        }),
        signal: options.signal,
      }),
    );
  }

  /** `{ after: id }` puts it right after that task, `{ after: null }` first. */
  moveTask(
    taskId: string,
    body: MoveTaskData["body"],
    options: Pick<CallOptions, "ifMatch" | "signal"> = {},
  ): Promise<Reply<MoveTaskResponses[200]>> {
    return reply(
      sdk.moveTask({
        client: this.client,
        path: { task_id: taskId },
        body,
        headers: headers({ "If-Match": options.ifMatch }),
        signal: options.signal,
      }),
    );
  }

  deleteTask(
    taskId: string,
    options: Pick<CallOptions, "ifMatch" | "signal"> = {},
  ): Promise<Reply<DeleteTaskResponses[204]>> {
    return reply(
      sdk.deleteTask({
        client: this.client,
        path: { task_id: taskId },
        headers: headers({ "If-Match": options.ifMatch }),
        signal: options.signal,
      }),
    );
  }

  /** Sets `body.status` on every task (or those with `query.status`) that differs. */
  setAllStatuses(
    body: SetAllStatusesData["body"],
    query?: SetAllStatusesData["query"],
    options: Pick<CallOptions, "signal"> = {},
  ): Promise<Reply<SetAllStatusesResponses[200]>> {
    return reply(
      sdk.setAllStatuses({
        client: this.client,
        body,
        query,
        headers: headers({}),
        signal: options.signal,
      }),
    );
  }

  /** Deletes every task with `query.status` (clear completed). */
  deleteAll(
    query: DeleteAllData["query"],
    options: Pick<CallOptions, "signal"> = {},
  ): Promise<Reply<DeleteAllResponses[200]>> {
    return reply(
      sdk.deleteAll({ client: this.client, query, headers: headers({}), signal: options.signal }),
    );
  }

  summarise(
    options: Pick<CallOptions, "ifNoneMatch" | "signal"> = {},
  ): Promise<Conditional<SummariseResponses[200]>> {
    return conditional(
      sdk.summarise({
        client: this.client,
        headers: headers({ "If-None-Match": options.ifNoneMatch }),
        signal: options.signal,
      }),
    );
  }

  /** One page of the change feed (`since`, `limit`, `wait`); follow `cursor` while `has_more`. */
  readChanges(
    query?: ReadChangesData["query"],
    options: Pick<CallOptions, "signal"> = {},
  ): Promise<Reply<ReadChangesResponses[200]>> {
    return reply(
      sdk.readChanges({ client: this.client, query, headers: headers({}), signal: options.signal }),
    );
  }

  /**
   * The change stream, live: catch-up events, `ready`, then one event per write; it reconnects
   * with `Last-Event-ID` whenever the server ends the stream, and yields `reset` (then the
   * snapshot) when its cursor can no longer be served.
   */
  streamChanges(options: StreamOptions = {}): AsyncGenerator<StreamEvent, void, undefined> {
    const url = this.client.buildUrl({ url: "/api/tasks/stream" });
    return streamChanges((cursor, signal) => {
      const request = new Headers({ Accept: "text/event-stream" });
      if (cursor !== null) request.set("Last-Event-ID", cursor);
      return this.fetch(url, { headers: request, signal: signal ?? null, cache: "no-store" });
    }, options);
  }
}

// Each generated operation has a method of the same name: a new one in the contract fails here.
type Missing = Exclude<keyof typeof sdk, keyof TodoClient>;
const everyOperation: [Missing] extends [never] ? true : Missing = true;
void everyOperation;

/**
 * The headers of one call, typed as the operation's. The contract lists `X-User-ID` among them
 * (optional: header mode's credential); the credentials are not the caller's to pass on each
 * call, though: the authenticated `fetch` adds them, in either mode.
 */
function headers<T>(values: Record<string, string | undefined>): T {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined)) as T;
}

interface Outcome<T> {
  data: T | undefined;
  error: unknown;
  response: Response;
}

async function reply<T>(call: Promise<Outcome<T>>): Promise<Reply<T>> {
  const outcome = await call;
  // No response: fetch itself failed (network, abort); the generated client hands its error back.
  const response = outcome.response as Response | undefined;
  if (response === undefined) throw outcome.error;
  if (!response.ok) throw new ProblemError(response, outcome.error);
  return {
    data: outcome.data as T,
    etag: response.headers.get("ETag") ?? undefined,
    replayed: response.headers.get("Idempotent-Replayed") === "true",
    response,
  };
}

async function conditional<T>(call: Promise<Outcome<T>>): Promise<Conditional<T>> {
  const outcome = await call;
  const response = outcome.response as Response | undefined;
  if (response?.status === 304) {
    return {
      notModified: true,
      data: undefined,
      etag: response.headers.get("ETag") ?? undefined,
      response,
    };
  }
  return { ...(await reply(Promise.resolve(outcome))), notModified: false };
}
