// A real Better Auth issuer for the interoperability test: email and password
// sign-up, the JWT plugin with its default Ed25519 keys, and a throwaway
// in-memory SQLite database. It listens on a free loopback port, prints one
// JSON line {"baseURL": ...} once it can serve, and exits when its standard
// input closes, so it never outlives the test that started it.
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";

import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import { toNodeHandler } from "better-auth/node";
import { jwt } from "better-auth/plugins";
import Database from "better-sqlite3";

// Better Auth signs its tokens with its base URL as issuer and audience, so
// the port must be known before the auth instance exists.
let handle = (_request, response) => response.writeHead(503).end();
const server = createServer((request, response) => handle(request, response));
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const baseURL = `http://127.0.0.1:${server.address().port}`;

const auth = betterAuth({
  baseURL,
  secret: randomBytes(32).toString("hex"),
  database: new Database(":memory:"),
  emailAndPassword: { enabled: true },
  plugins: [jwt()],
  telemetry: { enabled: false },
});
const { runMigrations } = await getMigrations(auth.options);
await runMigrations();
handle = toNodeHandler(auth);

process.stdout.write(`${JSON.stringify({ baseURL })}\n`);

const stop = () => server.close(() => process.exit(0));
process.stdin.on("end", stop);
process.stdin.resume();
process.on("SIGTERM", stop);
