import type { FieldProblem, Problem } from "./generated/types.gen.js";

export type { FieldProblem, Problem };

/**
 * An error answer of the API (RFC 9457 problem+json), thrown by every call.
 *
 * Built from the body when it is a problem document, else from the status line alone, so an
 * answer that never reached the API (a proxy's 502 page) is a `ProblemError` too.
 */
export class ProblemError extends Error {
  override readonly name = "ProblemError";
  /** A stable URI such as `urn:todo:problem:stale-version`; `about:blank` when the status says it all. */
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly instance: string | undefined;
  /** On a 422: one entry per invalid field; otherwise empty. */
  readonly errors: readonly FieldProblem[];
  /** The response's `X-Request-ID`, to quote when reporting a problem. */
  readonly requestId: string | undefined;
  /** Seconds to wait before trying again (429, 503), when the server said. */
  readonly retryAfter: number | undefined;
  /** The task's current ETag, on a 412. */
  readonly etag: string | undefined;
  readonly response: Response;

  constructor(response: Response, body: unknown) {
    const problem = asProblem(body);
    const detail =
      problem?.detail ??
      (typeof body === "string" && body ? body.slice(0, 500) : response.statusText);
    super(`${response.status} ${problem?.type ?? "about:blank"}: ${detail}`);
    this.type = problem?.type ?? "about:blank";
    this.title = problem?.title ?? response.statusText;
    this.status = problem?.status ?? response.status;
    this.detail = detail;
    this.instance = problem?.instance ?? undefined;
    this.errors = problem?.errors ?? [];
    this.requestId = problem?.request_id ?? response.headers.get("X-Request-ID") ?? undefined;
    this.retryAfter = seconds(response.headers.get("Retry-After"));
    this.etag = response.headers.get("ETag") ?? undefined;
    this.response = response;
  }

  /** Reads the body of an error response that nothing has read yet. */
  static async from(response: Response): Promise<ProblemError> {
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON: the status line and the text are all there is.
    }
    return new ProblemError(response, body);
  }
}

function asProblem(body: unknown): Problem | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const candidate = body as Partial<Problem>;
  if (typeof candidate.status !== "number" || typeof candidate.detail !== "string")
    return undefined;
  return candidate as Problem;
}

function seconds(header: string | null): number | undefined {
  if (header === null) return undefined;
  const value = Number(header);
  if (Number.isFinite(value)) return value;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, (date - Date.now()) / 1000);
}
