import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";

import { ProblemError, TodoClient } from "../src/index.js";

/** A client for a new user of this server, in header mode. */
export function newUser(baseUrl: string, fetch?: typeof globalThis.fetch): TodoClient {
  return new TodoClient({ baseUrl, auth: { userId: randomUUID() }, ...(fetch ? { fetch } : {}) });
}

/** Awaits a call that must fail with this problem, and hands the error back for more checks. */
export async function problem(
  call: Promise<unknown>,
  expected: { status: number; type: string },
): Promise<ProblemError> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof ProblemError, `not a ProblemError: ${String(error)}`);
    assert.equal(error.status, expected.status, error.message);
    assert.equal(error.type, expected.type, error.message);
    assert.equal(error.response.status, expected.status);
    assert.ok(error.detail.length > 0);
    assert.ok(error.title.length > 0);
    assert.match(error.requestId ?? "", /^[A-Za-z0-9._:-]+$/);
    return error;
  }
  assert.fail(`expected a ${expected.status} ${expected.type}`);
}
