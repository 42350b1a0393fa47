/**
 * Live servers for the tests: the API (alembic upgrade, then uvicorn, on a database of its own
 * and a free port) from `backend/.venv`, which `make install` creates, and the Better Auth issuer
 * of the backend's interop test, whose packages `make node-deps` installs.
 *
 * `TEST_DATABASE=postgresql` runs the API on a throwaway database on `TEST_POSTGRES_URL`'s
 * server (created here, dropped after); otherwise on an SQLite file.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { closeSync, existsSync, openSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";

const run = promisify(execFile);

export const repoRoot = findRepoRoot(process.cwd());
const backend = join(repoRoot, "backend");
const venvBin = join(backend, ".venv", "bin");

function findRepoRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "backend", "pyproject.toml"))) return dir;
    if (dirname(dir) === dir) throw new Error(`no backend/pyproject.toml above ${from}`);
  }
}

// Every server still running when this process ends goes with it, even if the run is cut short.
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => process.exit(1));
}

function track(child: ChildProcess): ChildProcess {
  running.add(child);
  child.once("exit", () => running.delete(child));
  return child;
}

export interface Server {
  url: string;
  stop(): Promise<void>;
}

const database = process.env.TEST_DATABASE ?? "sqlite";
const postgresAdminUrl =
  process.env.TEST_POSTGRES_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";

/** Starts the API with these settings (on top of header mode and no limits) and waits for /health. */
export async function startApi(settings: Record<string, string> = {}): Promise<Server> {
  if (!existsSync(join(venvBin, "uvicorn")))
    throw new Error("backend/.venv is missing: run `make install`");
  // Its own folder as the working directory, so that no developer's backend/.env applies.
  const folder = await mkdtemp(join(tmpdir(), "todo-client-test-"));
  const { url: databaseUrl, drop } = await createDatabase(folder);
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DATABASE_URL: databaseUrl,
    AUTH_MODE: "header",
    LOG_LEVEL: "WARNING",
    ...settings,
  };
  await run(join(venvBin, "alembic"), ["-c", join(backend, "alembic.ini"), "upgrade", "head"], {
    cwd: folder,
    env,
  });
  const log = join(folder, "server.log");
  const output = openSync(log, "w");
  const child = track(
    spawn(
      join(venvBin, "uvicorn"),
      [
        "todo.main:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        String(port),
        "--no-access-log",
        "--timeout-graceful-shutdown",
        "1",
      ],
      { cwd: folder, env, stdio: ["ignore", output, output] },
    ),
  );
  closeSync(output);
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await terminate(child);
    await drop();
    await rm(folder, { recursive: true, force: true });
  };
  try {
    await waitForHealth(url, child, log);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, stop };
}

async function createDatabase(folder: string): Promise<{ url: string; drop: () => Promise<void> }> {
  if (database === "sqlite")
    return { url: `sqlite:///${join(folder, "todo.db")}`, drop: async () => {} };
  if (database !== "postgresql")
    throw new Error(`TEST_DATABASE is sqlite or postgresql, not ${database}`);
  const name = `todo_client_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(postgresAdminUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

async function admin(statement: string): Promise<void> {
  const script =
    "import asyncio, sys, asyncpg\n" +
    "async def main():\n" +
    "    connection = await asyncpg.connect(sys.argv[1])\n" +
    "    await connection.execute(sys.argv[2])\n" +
    "    await connection.close()\n" +
    "asyncio.run(main())\n";
  await run(join(venvBin, "python"), ["-c", script, postgresAdminUrl, statement]);
}

async function waitForHealth(url: string, child: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      if ((await fetch(`${url}/health`)).ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the API did not start:\n${await readFile(log, "utf8").catch(() => "")}`);
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(),
      );
    });
  });
}

/** The real Better Auth issuer (email and password, the JWT plugin) on a free port. */
export async function startBetterAuth(): Promise<Server> {
  const folder = join(backend, "tests", "interop", "better-auth");
  if (!existsSync(join(folder, "node_modules")))
    throw new Error(`run \`make node-deps\` to install ${folder}`);
  const child = spawn(process.execPath, ["server.mjs"], {
    cwd: folder,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once("line", resolve);
    child.once("exit", () => reject(new Error("Better Auth did not start")));
  });
  lines.close();
  const { baseURL } = JSON.parse(first) as { baseURL: string };
  return {
    url: baseURL,
    // It exits when its standard input closes.
    stop: async () => {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.stdin!.end();
      await exited;
    },
  };
}

/** Signs a new user up, as a browser would; `token()` is what Better Auth's `authClient.token()` fetches. */
export async function signUp(
  issuer: string,
  name: string,
): Promise<{ token: () => Promise<string> }> {
  const response = await fetch(`${issuer}/api/auth/sign-up/email`, {
    method: "POST",
    // As from the issuer's own pages: Better Auth refuses cookie requests of other origins.
    headers: { "Content-Type": "application/json", Origin: issuer },
    body: JSON.stringify({
      name,
      email: `${name}-${Math.random().toString(36).slice(2, 10)}@example.com`,
      password: "correct horse battery staple",
    }),
  });
  if (!response.ok) throw new Error(`sign-up: ${response.status} ${await response.text()}`);
  const cookie = response.headers
    .getSetCookie()
    .map((line) => line.split(";")[0])
    .join("; ");
  return {
    token: async () => {
      const answer = await fetch(`${issuer}/api/auth/token`, {
        headers: { cookie, Origin: issuer },
      });
      if (!answer.ok) throw new Error(`token: ${answer.status} ${await answer.text()}`);
      return ((await answer.json()) as { token: string }).token;
    },
  };
}
