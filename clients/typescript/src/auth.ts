/**
 * Who the calls act for, set once per client.
 *
 * - `{ userId }`: header mode (`AUTH_MODE=header`, development): the user's UUID in `X-User-ID`.
 * - `{ token }`: JWT mode (`AUTH_MODE=jwt`): a function that returns a fresh Better Auth token,
 *   called before every request and every stream (re)connect; `null` sends no token.
 */
export type Auth =
  | { userId: string }
  | { token: () => string | null | undefined | Promise<string | null | undefined> };

type Fetch = typeof globalThis.fetch;

/**
 * A `fetch` that adds the credentials to each request. In JWT mode a 401 is retried once with a
 * new token (the one it sent may have just expired); the server checks the token before
 * anything else, so the refused request did nothing.
 */
export function authenticatedFetch(
  auth: Auth | undefined,
  baseFetch: Fetch = globalThis.fetch,
): Fetch {
  if (auth === undefined) return (input, init) => baseFetch(input, init);
  if ("userId" in auth) {
    return (input, init) => {
      const request = new Request(input, init);
      request.headers.set("X-User-ID", auth.userId);
      return baseFetch(request);
    };
  }
  return async (input, init) => {
    const request = new Request(input, init);
    const response = await baseFetch(await withToken(request.clone(), auth.token));
    if (response.status !== 401) return response;
    await response.body?.cancel();
    return baseFetch(await withToken(request, auth.token));
  };
}

async function withToken(request: Request, token: () => unknown): Promise<Request> {
  const value = await token();
  if (typeof value === "string" && value !== "")
    request.headers.set("Authorization", `Bearer ${value}`);
  return request;
}
