export type { Auth } from "./auth.js";
export { authenticatedFetch } from "./auth.js";
export type { CallOptions, Conditional, Page, Reply, TodoClientOptions } from "./client.js";
export { TodoClient } from "./client.js";
export type { FieldProblem, Problem } from "./errors.js";
export { ProblemError } from "./errors.js";
export { nextCursor } from "./pages.js";
export type { Change, StreamEvent, StreamOptions } from "./stream.js";
export type * from "./generated/types.gen.js";
