/**
 * A todo page on an origin of its own, calling the API cross-origin through the TypeScript client.
 *
 * The query string says where the API is and how to authenticate:
 * `?api=http://127.0.0.1:8000&user=<uuid>` in header mode, `?api=...&auth=jwt` in JWT mode, where
 * the page signs up with Better Auth on its own origin (`/api/auth/*`, where a Next.js app mounts
 * it) and hands the client a function that fetches a token.
 *
 * The list is the change stream's: every write, from this page or any other, comes back through
 * it. Writes are conditional: each sends the ETag this page last read for the task as `If-Match`.
 */
import { type Auth, type Change, ProblemError, type TaskRead, TodoClient } from "@todo/client";

const STALE_VERSION = "urn:todo:problem:stale-version";

const params = new URLSearchParams(location.search);
const apiUrl = params.get("api") ?? "http://127.0.0.1:8000";
const pageSize = Number(params.get("pageSize") ?? "100");

function element<T extends HTMLElement>(selector: string): T {
  const found = document.querySelector<T>(selector);
  if (found === null) throw new Error(`no ${selector} in the page`);
  return found;
}

const who = element<HTMLParagraphElement>("#who");
const signUpForm = element<HTMLFormElement>("#sign-up");
const app = element<HTMLElement>("#app");
const newTask = element<HTMLFormElement>("#new-task");
const sync = element<HTMLParagraphElement>("#sync");
const list = element<HTMLUListElement>("#tasks");
const message = element<HTMLParagraphElement>("#message");
const requests = element<HTMLTableSectionElement>("#requests tbody");

// ---- Requests, with the response headers a cross-origin script may read ----

const EXPOSED = ["X-Request-ID", "ETag", "Location", "Link"] as const;
const LOGGED_ROWS = 40;

/** `fetch`, with one row in the page's request table per answer. */
const loggedFetch: typeof fetch = async (input, init) => {
  const request = new Request(input, init);
  const row = requests.insertRow();
  const url = new URL(request.url);
  row.dataset.method = request.method;
  row.dataset.path = url.pathname;
  cell(row, "request", `${request.method} ${url.pathname}${url.search}`);
  const status = cell(row, "status", "…");
  cell(row, "if-match", request.headers.get("If-Match") ?? "");
  while (requests.rows.length > LOGGED_ROWS) requests.deleteRow(0);
  let response: Response;
  try {
    response = await fetch(request);
  } catch (error) {
    status.textContent = "failed";
    throw error;
  }
  row.dataset.status = String(response.status);
  status.textContent = String(response.status);
  for (const name of EXPOSED) cell(row, name.toLowerCase(), response.headers.get(name) ?? "");
  return response;
};

function cell(row: HTMLTableRowElement, name: string, text: string): HTMLTableCellElement {
  const added = row.insertCell();
  added.className = name;
  added.textContent = text;
  return added;
}

// ---- The user's tasks: the stream's copy, and the version this page last read of each ----

const tasks = new Map<string, TaskRead>();

/**
 * The ETag of a task as this page last read it, with the `updated_at` of that read: a change
 * from the stream with another `updated_at` was someone else's write, so the ETag is dropped and
 * read again before the next write.
 */
const versions = new Map<string, { etag: string; updatedAt: string }>();

/** Open editors, by task id: the text being typed, and the ETag the edit started from. */
const editors = new Map<string, { form: HTMLFormElement; basis: string }>();

let client: TodoClient;

function remember(task: TaskRead, etag: string | undefined): void {
  tasks.set(task.id, task);
  if (etag !== undefined) versions.set(task.id, { etag, updatedAt: task.updated_at });
}

function apply(changes: readonly Change[]): void {
  for (const change of changes) {
    if (change.op === "upsert") {
      const { task } = change;
      tasks.set(task.id, task);
      if (versions.get(task.id)?.updatedAt !== task.updated_at) versions.delete(task.id);
    } else {
      tasks.delete(change.id);
      versions.delete(change.id);
      editors.delete(change.id);
    }
  }
}

/** The ETag to send as `If-Match`: the one last read, or a fresh read's. */
async function etagOf(taskId: string): Promise<string | undefined> {
  const known = versions.get(taskId)?.etag;
  if (known !== undefined) return known;
  const { data, etag } = await client.getTask(taskId);
  if (data !== undefined) remember(data, etag);
  return etag;
}

// ---- Rendering ----

const rows = new Map<string, HTMLLIElement>();

function render(): void {
  const ordered = [...tasks.values()].sort((a, b) =>
    a.position < b.position ? -1 : a.position > b.position ? 1 : 0,
  );
  for (const [taskId, row] of rows) {
    if (!tasks.has(taskId)) {
      row.remove();
      rows.delete(taskId);
    }
  }
  for (const task of ordered) {
    const row = rows.get(task.id) ?? newRow(task.id);
    const etag = versions.get(task.id)?.etag ?? "";
    row.dataset.status = task.status;
    row.dataset.title = task.title;
    row.dataset.etag = etag;
    row.querySelector<HTMLInputElement>(".toggle")!.checked = task.status === "completed";
    row.querySelector(".title")!.textContent = task.title;
    row.querySelector(".etag")!.textContent = etag === "" ? "ETag —" : `ETag ${etag}`;
    const editor = editors.get(task.id);
    if (editor !== undefined) {
      editor.form.querySelector(".basis")!.textContent = `editing from ETag ${editor.basis}`;
      if (editor.form.parentElement !== row) row.append(editor.form);
    } else {
      row.querySelector(".editor")?.remove();
    }
    list.append(row);
  }
}

function newRow(taskId: string): HTMLLIElement {
  const row = document.createElement("li");
  row.dataset.id = taskId;
  row.innerHTML =
    '<input type="checkbox" class="toggle" aria-label="Done" />' +
    '<span class="title"></span>' +
    '<code class="etag" title="The ETag this page last read for the task"></code>' +
    '<button type="button" class="edit">Edit</button>' +
    '<button type="button" class="delete">Delete</button>';
  rows.set(taskId, row);
  return row;
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

function say(text: string): void {
  message.dataset.kind = "ok";
  delete message.dataset.status;
  delete message.dataset.type;
  message.textContent = text;
}

function showProblem(doing: string, error: unknown): void {
  if (!(error instanceof ProblemError)) {
    message.dataset.kind = "error";
    message.textContent = `${doing}: ${String(error)}`;
    return;
  }
  message.dataset.kind = "problem";
  message.dataset.status = String(error.status);
  message.dataset.type = error.type;
  message.textContent =
    `${doing}: ${error.status} ${error.title} (${error.type}): ${error.detail}` +
    (error.requestId === undefined ? "" : ` Request ${error.requestId}.`);
}

/** Runs one user action; its problem, if any, goes to the message line. */
async function act(doing: string, action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (error) {
    showProblem(doing, error);
  }
  render();
}

// ---- Actions ----

newTask.addEventListener("submit", (event) => {
  event.preventDefault();
  const input = newTask.elements.namedItem("title") as HTMLInputElement;
  const title = input.value;
  void act("Create", async () => {
    const reply = await client.createTask({ title }, { idempotencyKey: crypto.randomUUID() });
    remember(reply.data, reply.etag);
    input.value = "";
    say(`Created at ${reply.response.headers.get("Location") ?? "?"} with ETag ${reply.etag}.`);
  });
});

list.addEventListener("click", (event) => {
  const target = event.target as HTMLElement;
  const taskId = target.closest<HTMLLIElement>("li[data-id]")?.dataset.id;
  if (taskId === undefined) return;
  if (target.matches(".toggle")) void act("Toggle", () => toggle(taskId));
  else if (target.matches(".delete")) void act("Delete", () => remove(taskId));
  else if (target.matches(".edit")) void act("Edit", () => openEditor(taskId));
  else if (target.matches(".cancel")) {
    editors.delete(taskId);
    render();
  }
});

list.addEventListener("submit", (event) => {
  event.preventDefault();
  const taskId = (event.target as HTMLElement).closest<HTMLLIElement>("li[data-id]")?.dataset.id;
  if (taskId !== undefined) void act("Save", () => save(taskId));
});

async function toggle(taskId: string): Promise<void> {
  const reply = await client.toggleTask(taskId, { ifMatch: await etagOf(taskId) });
  remember(reply.data, reply.etag);
  say(`${reply.data.title}: ${reply.data.status}, ETag ${reply.etag}.`);
}

async function remove(taskId: string): Promise<void> {
  const title = tasks.get(taskId)?.title;
  await client.deleteTask(taskId, { ifMatch: await etagOf(taskId) });
  tasks.delete(taskId);
  versions.delete(taskId);
  editors.delete(taskId);
  say(`Deleted ${title}.`);
}

/** The editor starts from the task as the server has it now (a 304 when the copy is current). */
async function openEditor(taskId: string): Promise<void> {
  const known = versions.get(taskId)?.etag;
  const fresh = await client.getTask(taskId, known === undefined ? {} : { ifNoneMatch: known });
  if (!fresh.notModified) remember(fresh.data, fresh.etag);
  const basis = fresh.etag ?? known;
  const task = tasks.get(taskId);
  if (basis === undefined || task === undefined) return;
  const form = document.createElement("form");
  form.className = "editor";
  form.innerHTML =
    '<input name="title" maxlength="200" required aria-label="Title" />' +
    "<button>Save</button>" +
    '<button type="button" class="cancel">Cancel</button>' +
    '<small class="basis"></small>';
  (form.elements.namedItem("title") as HTMLInputElement).value = task.title;
  editors.set(taskId, { form, basis });
  say(`Editing ${task.title} from ETag ${basis}.`);
}

/**
 * Saves only if nobody changed the task since the edit began. On a 412 the edit stays open,
 * its text kept, now based on the ETag the 412 carries: saving again overwrites the other change.
 */
async function save(taskId: string): Promise<void> {
  const editor = editors.get(taskId);
  if (editor === undefined) return;
  const title = (editor.form.elements.namedItem("title") as HTMLInputElement).value;
  try {
    const reply = await client.updateTask(taskId, { title }, { ifMatch: editor.basis });
    remember(reply.data, reply.etag);
    editors.delete(taskId);
    say(`Saved ${reply.data.title} with ETag ${reply.etag}.`);
  } catch (error) {
    if (!(error instanceof ProblemError && error.type === STALE_VERSION)) throw error;
    showProblem("Not saved, the task changed since the edit began", error);
    message.textContent += ` It is now at ETag ${error.etag}: save again to overwrite it.`;
    if (error.etag !== undefined) editor.basis = error.etag;
  }
}

element("#compare").addEventListener("click", () => {
  void act("Compare", async () => {
    const listed: TaskRead[] = [];
    let pages = 0;
    for await (const page of client.pages({ sort: "position", limit: pageSize })) {
      pages += 1;
      listed.push(...page);
    }
    const same =
      listed.length === tasks.size &&
      listed.every((task) => JSON.stringify(task) === JSON.stringify(tasks.get(task.id)));
    say(
      `The list has ${count(listed.length, "task")} in ${count(pages, "page")}: ` +
        (same ? "the same as the live copy." : "not what the live copy holds."),
    );
    message.dataset.same = String(same);
  });
});

element("#anonymous").addEventListener("click", () => {
  void act("Without credentials", async () => {
    await new TodoClient({ baseUrl: apiUrl, fetch: loggedFetch }).listTasks();
    say("Without credentials: answered, which it should not have.");
  });
});

// ---- The live copy ----

async function follow(): Promise<void> {
  let liveChanges = 0;
  try {
    for await (const event of client.streamChanges()) {
      if (event.type === "reset") {
        tasks.clear();
        versions.clear();
      } else if (event.type === "ready") {
        sync.dataset.state = "live";
        sync.textContent = "Live: every write to these tasks shows here as it happens.";
      } else {
        apply(event.changes);
        if (sync.dataset.state === "live") sync.dataset.liveChanges = String((liveChanges += 1));
      }
      render();
    }
  } catch (error) {
    sync.dataset.state = "error";
    sync.textContent = `The change stream stopped: ${String(error)}`;
  }
}

function start(auth: Auth, description: string): void {
  client = new TodoClient({ baseUrl: apiUrl, auth, fetch: loggedFetch });
  who.textContent = description;
  signUpForm.hidden = true;
  app.hidden = false;
  void follow();
}

// ---- Who the page acts for ----

/** What Better Auth's `authClient.token()` fetches: a JWT for the session cookie's user. */
async function betterAuthToken(): Promise<string | null> {
  const response = await fetch("/api/auth/token");
  if (!response.ok) return null;
  return ((await response.json()) as { token: string }).token;
}

signUpForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const fields = Object.fromEntries(new FormData(signUpForm)) as Record<string, string>;
  void (async () => {
    const response = await fetch("/api/auth/sign-up/email", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(fields),
    });
    if (!response.ok) {
      who.textContent = `Sign-up refused: ${response.status} ${await response.text()}`;
      return;
    }
    const { user } = (await response.json()) as { user: { email: string } };
    start(
      { token: betterAuthToken },
      `Signed in as ${user.email} (JWT mode: a Better Auth token on every call).`,
    );
  })();
});

if (params.get("auth") === "jwt") {
  who.textContent = "Not signed in.";
  signUpForm.hidden = false;
} else {
  // Header mode: the URL names the user, so a second tab with the same URL is the same user.
  let userId = params.get("user");
  if (userId === null) {
    userId = crypto.randomUUID();
    params.set("user", userId);
    history.replaceState(null, "", `?${params}`);
  }
  start({ userId }, `User ${userId} (header mode: X-User-ID).`);
}
