// The Requests tab: the live request log of this server (polled from /v1/console/requests), the
// badge of unseen requests on its tab, and the hint to the Files tab that another client changed files.
import { ApiError, api } from "./api.js";
import { scheduleFilesRefresh } from "./files.js";
import { state } from "./state.js";
import { $, el, fmtBytes, fmtClock, report } from "./widgets.js";

const POLL_MS = 1500;
const MAX_REQUESTS = 500;

// ---------------------------------------------------------------- request log

export function startPolling() {
  stopPolling();
  state.pollTimer = setInterval(() => {
    if (!document.hidden) pollRequests();
  }, POLL_MS);
  pollRequests();
}

export function stopPolling() {
  clearInterval(state.pollTimer);
  state.pollTimer = null;
}

export async function pollRequests() {
  if (!state.key || state.polling) return;
  state.polling = true;
  const after = Object.entries(state.lastSeqs).map(([process, seq]) => `${process}:${seq}`).join(",");
  const params = new URLSearchParams({ after });
  if ($("requests-console").checked) params.set("include_console", "true");
  try {
    const body = await api(`v1/console/requests?${params}`);
    if (!state.key) return;
    const primed = body.process in state.lastSeqs;
    state.lastSeqs[body.process] = body.last_seq;
    const known = Object.keys(state.lastSeqs);
    if (known.length > 64) delete state.lastSeqs[known[0]];
    // The workspace column matters only when keys separate workspaces and this key sees them all.
    document.body.classList.toggle("requests-all", Boolean(body.all_workspaces) && state.info.auth === "keys");
    const fresh = body.data;
    if (!fresh.length) return;
    // Another client changed files since the last poll: reload the list (not on the first poll,
    // which returns the past and comes right after the list was loaded).
    const external = fresh.filter((r) => !state.ownRequestIds.has(r.request_id));
    if (primed && external.some((r) => r.mutating)) scheduleFilesRefresh();
    if (state.paused) {
      state.pendingRequests.push(...fresh);
    } else {
      addRequests(fresh);
    }
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) report(err);
    else $("requests-status").textContent = `Not updating: ${err.message}`;
  } finally {
    state.polling = false;
  }
}

function addRequests(records) {
  const seen = new Set(state.requests.map((r) => r.request_id));
  const fresh = records.filter((r) => !seen.has(r.request_id));
  if (!fresh.length) return;
  state.requests.push(...fresh);
  state.requests.sort((a, b) => a.time - b.time); // several worker processes answer in turn
  if (state.requests.length > MAX_REQUESTS) state.requests.splice(0, state.requests.length - MAX_REQUESTS);
  if (state.view !== "requests") {
    state.unseen += fresh.length;
    renderBadge();
  } else {
    renderRequests(new Set(fresh.map((r) => r.request_id)));
  }
}

export function renderBadge() {
  const badge = $("requests-badge");
  badge.hidden = state.unseen === 0;
  badge.textContent = state.unseen > 99 ? "99+" : String(state.unseen);
}

export function renderRequests(freshIds = new Set()) {
  const errorsOnly = $("requests-errors").checked;
  const shown = state.requests.filter((r) => !errorsOnly || r.status >= 400 || r.status === 0);
  const rows = [];
  for (let i = shown.length - 1; i >= 0; i -= 1) rows.push(requestRow(shown[i], freshIds.has(shown[i].request_id)));
  $("requests-body").replaceChildren(...rows);
  $("requests-empty").hidden = rows.length > 0;
  const paused = state.paused ? ` · paused (${state.pendingRequests.length} waiting)` : "";
  $("requests-status").textContent = `${shown.length} request${shown.length === 1 ? "" : "s"} · live${paused}`;
}

// Messages gateway calls: the files they resolved (ids, names, sizes; never their bytes).
function gatewayFiles(r) {
  if (!r.files || r.files.length === 0) return null;
  const names = r.files.map((f) => `${f.filename} (${fmtBytes(f.size_bytes)})`).join(", ");
  const ids = r.files.map((f) => `${f.id} ${f.media_type} in ${f.block}`).join("\n");
  return el("div", { class: "gateway-files", title: ids, text: `files: ${names}` });
}

function requestRow(r, fresh) {
  const statusClass = r.status ? `status s${String(r.status)[0]}` : "status";
  const mine = state.ownRequestIds.has(r.request_id);
  return el(
    "tr",
    { class: fresh ? "fresh" : "", dataset: { seq: String(r.seq), method: r.method, status: String(r.status) } },
    el("td", { class: "time mono", title: new Date(r.time * 1000).toISOString(), text: fmtClock(r.time) }),
    el("td", {}, el("span", { class: `method m-${r.method}`, text: r.method })),
    el("td", { class: "path", title: `${r.path}  (route ${r.route})` }, r.path, gatewayFiles(r)),
    el("td", {}, el("span", { class: `pill ${r.dialect}`, text: r.dialect })),
    el("td", { class: "num" }, el("span", { class: statusClass, text: r.status ? String(r.status) : "—" })),
    el("td", { class: "num duration", text: `${r.duration_ms.toFixed(1)} ms` }),
    el("td", { class: "rid", text: r.request_id }),
    el("td", { class: "sdk", title: r.user_agent || "no user agent" }, r.sdk || "—", mine ? el("span", { class: "pill mine", text: "this console" }) : null),
    el("td", { class: "ws-col", text: r.workspace || "—" }),
  );
}

// ---------------------------------------------------------------- wiring

export function wireRequests() {
  $("requests-pause").addEventListener("click", () => {
    state.paused = !state.paused;
    $("requests-pause").textContent = state.paused ? "Resume" : "Pause";
    if (!state.paused && state.pendingRequests.length) {
      const pending = state.pendingRequests;
      state.pendingRequests = [];
      addRequests(pending);
    } else {
      renderRequests();
    }
  });
  $("requests-clear").addEventListener("click", () => {
    state.requests = [];
    state.pendingRequests = [];
    renderRequests();
  });
  $("requests-errors").addEventListener("change", () => renderRequests());
  $("requests-console").addEventListener("change", () => {
    state.requests = [];
    state.lastSeqs = {};
    renderRequests();
    pollRequests();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.key) pollRequests();
  });
}
