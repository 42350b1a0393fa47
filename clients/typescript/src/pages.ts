/**
 * The `cursor` of a `Link: <...>; rel="next"` header, or undefined on the last page.
 *
 * The next page's URL is the same query with this cursor, so a caller that keeps its query and
 * sends the cursor follows the link exactly, through the typed operation.
 */
export function nextCursor(link: string | null): string | undefined {
  if (link === null) return undefined;
  for (const match of link.matchAll(/<([^>]*)>([^,]*)/g)) {
    const [, target = "", params = ""] = match;
    const rel = /;\s*rel\s*=\s*"?([^";]*)"?/i.exec(params)?.[1] ?? "";
    if (rel.split(/\s+/).includes("next")) {
      return new URL(target, "http://base.invalid").searchParams.get("cursor") ?? undefined;
    }
  }
  return undefined;
}

/** Pages one after the other, from the first to the one without a next link. */
export async function* followPages<T>(
  read: (cursor: string | undefined) => Promise<{ data: T[]; nextCursor: string | undefined }>,
): AsyncGenerator<T[], void, undefined> {
  let cursor: string | undefined;
  do {
    const page = await read(cursor);
    yield page.data;
    cursor = page.nextCursor;
  } while (cursor !== undefined);
}
