// What the browser test runs against: the API as `make run` starts it, the Better Auth issuer of
// the backend's interop test, and the page's own origin (the built page, and Better Auth's
// routes forwarded to the issuer, as a Next.js app mounts them at /api/auth).
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

import { startWeb } from "./web-server.mjs";

export { startWeb };

const here = fileURLToPath(new URL(".", import.meta.url));
export const repoRoot = resolve(here, "../../..");
export const artifacts = resolve(here, "../artifacts");

// Whatever is still running when the test process ends goes with it, even when it is cut short.
const groups = new Set();
process.once("exit", () => {
  for (const pid of groups) signalGroup(pid, "SIGKILL");
});
for (const signal of ["SIGINT", "SIGTERM"]) process.once(signal, () => process.exit(1));

/** A folder of artifacts/ for one suite, emptied first. */
export function artifactFolder(suite) {
  const folder = join(artifacts, suite);
  rmSync(folder, { recursive: true, force: true });
  mkdirSync(folder, { recursive: true });
  return folder;
}

/**
 * `make run` from the repository root, with these settings on a free port and an SQLite file of
 * its own; resolves once /health answers. Its output goes to `log`.
 */
export async function startApi(settings, log) {
  const port = await freePort();
  const folder = await mkdtemp(join(tmpdir(), "todo-e2e-"));
  const env = {
    ...process.env,
    HOST: "127.0.0.1",
    PORT: String(port),
    DATABASE_URL: `sqlite:///${join(folder, "todo.db")}`,
    LOG_LEVEL: "INFO",
    ...settings,
  };
  // A make of its own, as a newcomer's shell starts it, not a sub-make of `make e2e`.
  for (const name of ["MAKEFLAGS", "MFLAGS", "MAKELEVEL"]) delete env[name];
  const output = openSync(log, "w");
  // Its own process group: make, uv, uvicorn's reloader and the worker it spawns stop together.
  const child = spawn("make", ["--no-print-directory", "run"], {
    cwd: repoRoot,
    env,
    detached: true,
    stdio: ["ignore", output, output],
  });
  closeSync(output);
  groups.add(child.pid);
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await stopGroup(child.pid);
    await rm(folder, { recursive: true, force: true });
  };
  try {
    await waitForHealth(url, child, log);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, log, stop };
}

async function waitForHealth(url, child, log) {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline && child.exitCode === null) {
    try {
      if ((await fetch(`${url}/health`)).ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((done) => setTimeout(done, 100));
  }
  throw new Error(`make run did not serve ${url}:\n${readFileSync(log, "utf8")}`);
}

/** SIGTERM to the whole group, then SIGKILL to whatever is left after 15 s. */
async function stopGroup(pid) {
  signalGroup(pid, "SIGTERM");
  const deadline = Date.now() + 15_000;
  while (groupAlive(pid) && Date.now() < deadline) {
    await new Promise((done) => setTimeout(done, 50));
  }
  if (groupAlive(pid)) signalGroup(pid, "SIGKILL");
  groups.delete(pid);
}

function signalGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    // Gone already.
  }
}

function groupAlive(pid) {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The backend's interop issuer (email and password, the JWT plugin), trusting `origin` for
 * sign-ups; its base URL is the tokens' issuer and audience.
 */
export async function startBetterAuth(origin, log) {
  const folder = join(repoRoot, "backend", "tests", "interop", "better-auth");
  const errors = openSync(log, "w");
  const child = spawn(process.execPath, ["server.mjs"], {
    cwd: folder,
    env: { ...process.env, BETTER_AUTH_TRUSTED_ORIGINS: origin },
    detached: true,
    stdio: ["pipe", "pipe", errors],
  });
  closeSync(errors);
  groups.add(child.pid);
  const lines = createInterface({ input: child.stdout });
  const first = await new Promise((done, fail) => {
    lines.once("line", done);
    child.once("exit", () =>
      fail(new Error(`Better Auth did not start:\n${readFileSync(log, "utf8")}`)),
    );
  });
  lines.close();
  const { baseURL } = JSON.parse(first);
  return {
    url: baseURL,
    // It exits when its standard input closes.
    stop: async () => {
      child.stdin.end();
      await stopGroup(child.pid);
    },
  };
}

function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}
