// The page's origin: the built page (dist/) and, once `forwardAuth` names an issuer, Better Auth's
// routes (/api/auth/*) forwarded to it, so that its session cookie is the page's own, as when a
// Next.js app mounts Better Auth. By hand: `npm run serve` (http://localhost:3000, the origin
// the API allows by default), or `npm run serve -- <port>`.
import { readFile } from "node:fs/promises";
import { createServer, request as forward } from "node:http";
import { extname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const dist = resolve(fileURLToPath(new URL("../dist", import.meta.url)));
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
};

/** Serves on 127.0.0.1 (`port` 0: a free one); the page's origin is `http://localhost:<port>`. */
export async function startWeb(port = 0) {
  let issuer;
  const server = createServer((request, response) => {
    if (issuer !== undefined && request.url.startsWith("/api/auth/")) {
      const target = new URL(request.url, issuer);
      const upstream = forward(
        target,
        { method: request.method, headers: { ...request.headers, host: target.host } },
        (answer) => {
          response.writeHead(answer.statusCode, answer.rawHeaders);
          answer.pipe(response);
        },
      );
      upstream.once("error", () => response.writeHead(502).end());
      request.pipe(upstream);
      return;
    }
    serveFile(request, response);
  });
  await new Promise((done) => server.listen(port, "127.0.0.1", done));
  return {
    origin: `http://localhost:${server.address().port}`,
    forwardAuth(url) {
      issuer = url;
    },
    stop: () =>
      new Promise((done) => {
        server.close(done);
        server.closeAllConnections();
      }),
  };
}

async function serveFile(request, response) {
  const path = new URL(request.url, "http://page").pathname;
  const file = normalize(join(dist, path === "/" ? "index.html" : path));
  const type = TYPES[extname(file)];
  if (request.method !== "GET" || !file.startsWith(dist) || type === undefined) {
    response.writeHead(404).end();
    return;
  }
  try {
    const body = await readFile(file);
    response.writeHead(200, { "Content-Type": type, "Cache-Control": "no-cache" }).end(body);
  } catch {
    response.writeHead(404).end();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const web = await startWeb(Number(process.argv[2] ?? 3000));
  console.log(`the page: ${web.origin}/?api=http://127.0.0.1:8000`);
}
