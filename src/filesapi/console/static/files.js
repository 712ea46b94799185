// The Files tab: the list (paged, filtered by name or scope), details with a preview (text, image,
// PDF), download, delete, and uploads by drag and drop or the file picker.
import { API_VERSION, ApiError, api, errorFromBody, rememberOwn } from "./api.js";
import { state } from "./state.js";
import { loadStorage } from "./storage.js";
import { $, el, fmtBytes, fmtDate, fmtRelative, report, run, shell, toast } from "./widgets.js";

const PAGE_SIZE = 50;
const MAX_PAGE = 1000;
const TEXT_PREVIEW_BYTES = 256 * 1024;
const MEDIA_PREVIEW_BYTES = 50 * 1000 * 1000;
const IMAGE_TYPES = /^image\/(png|jpeg|gif|webp|avif|bmp|svg\+xml|x-icon|vnd\.microsoft\.icon)$/;
const TEXT_TYPES = /^(text\/.*|application\/(json|x-ndjson|xml|javascript|x-yaml|yaml|toml|x-sh|sql|csv|ld\+json)|.*\+(json|xml))$/;

const isExpired = (file) => Boolean(file.expires_at) && new Date(file.expires_at).getTime() <= Date.now();

// ---------------------------------------------------------------- files

export async function loadFiles({ append = false, limit = PAGE_SIZE } = {}) {
  const params = new URLSearchParams({ limit: String(limit) });
  if (state.scope) params.set("scope_id", state.scope);
  if (append) {
    if (!state.nextPage) return;
    params.set("page", state.nextPage);
  }
  const token = ++state.filesToken;
  $("files-status").textContent = "Loading…";
  const body = await api(`v1/files?${params}`);
  if (token !== state.filesToken) return; // a newer listing replaced this one
  state.files = append ? state.files.concat(body.data) : body.data;
  state.nextPage = body.next_page;
  if (state.selected && !state.files.some((f) => f.id === state.selected.id) && !append) closeDetails();
  renderFiles();
}

async function loadAll() {
  state.loadingAll = true;
  $("load-all").disabled = true;
  try {
    while (state.nextPage) await loadFiles({ append: true, limit: MAX_PAGE });
  } finally {
    state.loadingAll = false;
    $("load-all").disabled = false;
    renderFiles();
  }
}

// Another client changed the files (seen in the request log): reload what is loaded.
export function scheduleFilesRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => {
    if (!state.key || state.loadingAll) return;
    const limit = Math.min(MAX_PAGE, Math.max(PAGE_SIZE, state.files.length));
    run(loadFiles)({ limit });
    if (state.view === "storage") run(loadStorage)();
  }, 300);
}

function visibleFiles() {
  const needle = state.nameFilter.toLowerCase();
  return needle ? state.files.filter((f) => f.filename.toLowerCase().includes(needle)) : state.files;
}

export function renderFiles() {
  const rows = visibleFiles().map(fileRow);
  $("files-body").replaceChildren(...rows);
  $("files-empty").hidden = rows.length > 0;
  $("files-empty").textContent = state.files.length
    ? "No loaded file matches the filter."
    : state.scope ? `No files in scope ${state.scope}.` : "No files yet. Drop one above.";
  const parts = [`${rows.length} of ${state.files.length} loaded file${state.files.length === 1 ? "" : "s"}`];
  if (state.nameFilter) parts.push("the name filter covers loaded pages only");
  if (state.nextPage) parts.push("more on the server");
  if (state.scope) parts.push(`scope ${state.scope}`);
  $("files-status").textContent = parts.join(" · ");
  $("load-more").hidden = !state.nextPage;
  $("load-all").hidden = !state.nextPage;
}

function fileRow(file) {
  const expired = isExpired(file);
  const scope = file.scope ? file.scope.id : null;
  const row = el(
    "tr",
    { dataset: { id: file.id }, class: state.selected && state.selected.id === file.id ? "selected" : "", onclick: () => run(openDetails)(file) },
    el("td", { class: "name", title: file.filename, text: file.filename }),
    el("td", { class: "type col-type", title: file.mime_type, text: file.mime_type }),
    el("td", { class: "num size", title: `${file.size_bytes} bytes`, dataset: { bytes: String(file.size_bytes) }, text: fmtBytes(file.size_bytes) }),
    el("td", { class: "created", title: file.created_at, text: fmtDate(file.created_at) }),
    el("td", { class: expired ? "expires col-expires expired" : "expires col-expires", title: file.expires_at || "never", text: file.expires_at ? fmtRelative(file.expires_at) : "—" }),
    el("td", { class: "scope col-scope" }, scope
      ? el("button", { type: "button", class: "scope-link", title: "Show only this scope", text: scope, onclick: (e) => { e.stopPropagation(); setScope(scope); } })
      : "—"),
    el("td", { class: "id col-id", text: file.id }),
    el("td", { class: "actions" },
      el("button", {
        type: "button", class: "small download", disabled: !file.downloadable || expired,
        title: file.downloadable ? (expired ? "Expired" : "Download") : "Not downloadable",
        text: "Download", onclick: (e) => { e.stopPropagation(); run(download)(file); },
      }),
      el("button", { type: "button", class: "small danger delete", text: "Delete", onclick: (e) => { e.stopPropagation(); run(confirmDelete)(file); } })),
  );
  return row;
}

function setScope(scope) {
  $("filter-scope").value = scope;
  state.scope = scope;
  run(loadFiles)();
}

// ---------------------------------------------------------------- details and preview

export function closeDetails() {
  state.selected = null;
  state.previewToken += 1;
  revokePreview();
  $("details").hidden = true;
  document.querySelector(".files-layout").classList.remove("with-details");
  for (const row of document.querySelectorAll("#files-body tr.selected")) row.classList.remove("selected");
}

function revokePreview() {
  for (const url of state.previewUrls) URL.revokeObjectURL(url);
  state.previewUrls = [];
  $("preview").replaceChildren();
}

function renderMeta(file) {
  const dl = $("details-meta");
  const item = (label, value, cls) => [el("dt", { text: label }), el("dd", { class: cls, text: value })];
  dl.replaceChildren(
    ...item("ID", file.id, "mono"),
    ...item("Type", file.mime_type),
    ...item("Size", `${fmtBytes(file.size_bytes)} (${file.size_bytes.toLocaleString("en-US")} bytes)`),
    ...item("Created", file.created_at, "mono"), // as on the wire
    ...item("Expires", file.expires_at ? `${file.expires_at} (${fmtRelative(file.expires_at)})` : "never"),
    ...item("Scope", file.scope ? `${file.scope.type} ${file.scope.id}` : "none"),
    ...item("Downloadable", file.downloadable ? "yes" : "no"),
  );
  $("details-name").textContent = file.filename;
  $("details-download").disabled = !file.downloadable || isExpired(file);
}

async function openDetails(file) {
  state.selected = file;
  for (const row of document.querySelectorAll("#files-body tr")) row.classList.toggle("selected", row.dataset.id === file.id);
  document.querySelector(".files-layout").classList.add("with-details");
  $("details").hidden = false;
  renderMeta(file);
  const token = ++state.previewToken;
  revokePreview();
  $("preview").append(el("p", { class: "note", text: "Loading…" }));
  let fresh;
  try {
    fresh = await api(`v1/files/${encodeURIComponent(file.id)}`);
  } catch (err) {
    if (token !== state.previewToken) return;
    revokePreview();
    if (err instanceof ApiError && err.status === 404) {
      state.files = state.files.filter((f) => f.id !== file.id);
      renderFiles();
      closeDetails();
    }
    throw err;
  }
  if (token !== state.previewToken) return;
  state.selected = fresh;
  renderMeta(fresh);
  await showPreview(fresh, token);
}

function previewKind(file) {
  const type = (file.mime_type || "").toLowerCase().split(";")[0].trim();
  if (IMAGE_TYPES.test(type)) return "image";
  if (type === "application/pdf") return "pdf";
  if (type === "text/html" || type === "application/xhtml+xml") return "text"; // its source, never rendered
  if (TEXT_TYPES.test(type)) return "text";
  return null;
}

function isPdf(bytes) {
  const head = new TextDecoder("latin1").decode(new Uint8Array(bytes, 0, Math.min(1024, bytes.byteLength)));
  return head.includes("%PDF-");
}

function previewNote(text) {
  $("preview").replaceChildren(el("p", { class: "note", text }));
}

async function showPreview(file, token) {
  const kind = previewKind(file);
  if (!file.downloadable) return previewNote("Not downloadable, so there is no preview (files made by tools are, under --profile hosted).");
  if (isExpired(file)) return previewNote("This file has expired: its content is gone.");
  if (!kind) return previewNote(`No preview for ${file.mime_type}.`);
  if (kind !== "text" && file.size_bytes > MEDIA_PREVIEW_BYTES) return previewNote(`Too large to preview (${fmtBytes(file.size_bytes)}); download it instead.`);
  const path = `v1/files/${encodeURIComponent(file.id)}/content`;
  let response;
  try {
    response = kind === "text" && file.size_bytes > TEXT_PREVIEW_BYTES
      ? await api(path, { raw: true, extraHeaders: { range: `bytes=0-${TEXT_PREVIEW_BYTES - 1}` } })
      : await api(path, { raw: true });
  } catch (err) {
    if (token === state.previewToken) previewNote(`No preview: ${err.message}`);
    throw err;
  }
  const bytes = await response.arrayBuffer();
  if (token !== state.previewToken) return;
  const box = $("preview");
  if (kind === "image") {
    // A blob: URL in an <img>: an SVG shown this way cannot run script or load anything.
    const url = URL.createObjectURL(new Blob([bytes], { type: file.mime_type }));
    state.previewUrls.push(url);
    const img = el("img", { src: url, alt: file.filename, decoding: "async" });
    img.addEventListener("load", () => URL.revokeObjectURL(url), { once: true });
    img.addEventListener("error", () => previewNote("This image cannot be shown."), { once: true });
    box.replaceChildren(img);
  } else if (kind === "pdf") {
    // Only real PDFs, and the blob is typed application/pdf whatever the upload said, so the browser's
    // PDF viewer shows it and it is never parsed as HTML (the frame also inherits this page's CSP:
    // no inline script). Not a sandboxed frame: Chromium refuses to show PDFs in those.
    if (!isPdf(bytes)) return previewNote("This file is typed application/pdf but is not a PDF.");
    const url = URL.createObjectURL(new Blob([bytes], { type: "application/pdf" }));
    state.previewUrls.push(url);
    box.replaceChildren(el("iframe", { src: url, title: `Preview of ${file.filename}`, referrerpolicy: "no-referrer" }));
  } else {
    const text = new TextDecoder("utf-8").decode(bytes);
    if (text.includes("\u0000")) return previewNote("This looks like binary content; download it instead.");
    const pre = el("pre", { class: "text-preview" });
    pre.textContent = text; // never parsed as markup
    box.replaceChildren(pre);
    if (bytes.byteLength < file.size_bytes) {
      box.append(el("p", { class: "note", text: `First ${fmtBytes(bytes.byteLength)} of ${fmtBytes(file.size_bytes)}.` }));
    }
  }
}

// ---------------------------------------------------------------- download and delete

async function download(file) {
  const response = await api(`v1/files/${encodeURIComponent(file.id)}/content`, { raw: true });
  const data = await response.arrayBuffer();
  // octet-stream: the browser saves it and never renders it from this origin.
  const url = URL.createObjectURL(new Blob([data], { type: "application/octet-stream" }));
  const link = el("a", { href: url, download: file.filename, rel: "noopener", hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  toast(`Downloaded ${file.filename} (${fmtBytes(data.byteLength)})`);
}

function confirmDialog(file) {
  const dialog = $("confirm-dialog");
  $("confirm-text").replaceChildren(
    "Delete ", el("strong", { text: file.filename }), " ",
    el("code", { text: file.id }), "? This cannot be undone.",
  );
  return new Promise((resolve) => {
    const finish = (answer) => {
      $("confirm-ok").removeEventListener("click", yes);
      $("confirm-cancel").removeEventListener("click", no);
      dialog.removeEventListener("cancel", no);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const yes = () => finish(true);
    const no = (e) => { if (e) e.preventDefault(); finish(false); };
    $("confirm-ok").addEventListener("click", yes);
    $("confirm-cancel").addEventListener("click", no);
    dialog.addEventListener("cancel", no);
    dialog.showModal();
    $("confirm-cancel").focus();
  });
}

async function confirmDelete(file) {
  if (!(await confirmDialog(file))) return;
  await api(`v1/files/${encodeURIComponent(file.id)}`, { method: "DELETE" });
  state.files = state.files.filter((f) => f.id !== file.id);
  if (state.selected && state.selected.id === file.id) closeDetails();
  renderFiles();
  toast(`Deleted ${file.filename}`);
  if (state.view === "storage") run(loadStorage)();
}

// ---------------------------------------------------------------- upload

export function uploadAll(fileList) {
  const files = Array.from(fileList || []);
  if (!state.key || !files.length) return;
  if (state.view !== "files") shell.showView("files");
  for (const file of files) uploadOne(file);
}

function uploadOne(file) {
  const bar = el("progress", { max: "1", value: "0" });
  const status = el("span", { class: "state", text: "Starting…" });
  const cancel = el("button", { type: "button", class: "small ghost", text: "Cancel" });
  const row = el("div", { class: "upload", dataset: { name: file.name } },
    el("span", { class: "name", title: file.name, text: file.name }), bar, status, cancel);
  $("uploads").prepend(row);

  const form = new FormData();
  const expiry = $("upload-expiry").value;
  if (expiry) form.append("expires_in_seconds", expiry);
  form.append("file", file, file.name);

  const xhr = new XMLHttpRequest();
  xhr.open("POST", "v1/files");
  xhr.setRequestHeader("x-api-key", state.key);
  xhr.setRequestHeader("anthropic-version", API_VERSION);
  xhr.upload.addEventListener("progress", (e) => {
    if (!e.lengthComputable) return;
    bar.value = e.loaded / e.total;
    status.textContent = `${fmtBytes(e.loaded)} of ${fmtBytes(e.total)}`;
  });
  const finish = (cls, text, ms) => {
    row.classList.add(cls);
    status.textContent = text;
    cancel.remove();
    setTimeout(() => row.remove(), ms);
  };
  xhr.addEventListener("load", () => {
    const requestId = xhr.getResponseHeader("request-id");
    if (requestId) rememberOwn(requestId);
    if (xhr.status !== 200) {
      const err = errorFromBody(xhr.status, xhr.responseText, requestId);
      row.title = `${err.type} · ${err.requestId || ""}`;
      finish("failed", `Failed: ${err.message}`, 15000);
      if (xhr.status === 401) report(err);
      else toast(`${file.name}: ${err.message}`, { error: true, requestId: err.requestId });
      return;
    }
    const record = JSON.parse(xhr.responseText);
    bar.value = 1;
    finish("done", `Uploaded · ${fmtBytes(record.size_bytes)}`, 5000);
    if (!state.scope && !state.files.some((f) => f.id === record.id)) {
      state.files.unshift(record);
      state.files.sort((a, b) => (a.id < b.id ? 1 : -1)); // ids encode the creation time: newest first
      renderFiles();
    }
    if (state.view === "storage") run(loadStorage)();
  });
  xhr.addEventListener("error", () => finish("failed", "Failed: the connection broke.", 15000));
  xhr.addEventListener("abort", () => finish("failed", "Cancelled.", 4000));
  cancel.addEventListener("click", () => xhr.abort());
  xhr.send(form);
}

function hasFiles(event) {
  return Boolean(event.dataTransfer) && Array.from(event.dataTransfer.types || []).includes("Files");
}

function wireDragAndDrop() {
  const zone = $("dropzone");
  const overlay = $("drop-overlay");
  let depth = 0;
  const active = () => Boolean(state.key) && !$("tabs").hidden;
  zone.addEventListener("dragover", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    overlay.hidden = true;
    depth = 0;
    if (active()) uploadAll(e.dataTransfer && e.dataTransfer.files);
  });
  zone.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      $("file-input").click();
    }
  });
  // Files dropped anywhere else on the page upload too (and never navigate away).
  document.addEventListener("dragenter", (e) => {
    if (!hasFiles(e) || !active()) return;
    depth += 1;
    overlay.hidden = false;
  });
  document.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) overlay.hidden = true;
  });
  document.addEventListener("dragover", (e) => {
    if (hasFiles(e)) e.preventDefault();
  });
  document.addEventListener("drop", (e) => {
    depth = 0;
    overlay.hidden = true;
    if (e.defaultPrevented || !hasFiles(e)) return;
    e.preventDefault();
    if (active()) uploadAll(e.dataTransfer.files);
  });
}

// ---------------------------------------------------------------- wiring

export function wireFiles() {
  let filterTimer = null;
  $("filter-name").addEventListener("input", () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => {
      state.nameFilter = $("filter-name").value.trim();
      renderFiles();
    }, 80);
  });
  let scopeTimer = null;
  $("filter-scope").addEventListener("input", () => {
    clearTimeout(scopeTimer);
    scopeTimer = setTimeout(() => {
      const scope = $("filter-scope").value.trim();
      if (scope === state.scope) return;
      state.scope = scope;
      run(loadFiles)();
    }, 350);
  });
  $("refresh").addEventListener("click", run(() => loadFiles()));
  $("load-more").addEventListener("click", run(() => loadFiles({ append: true })));
  $("load-all").addEventListener("click", run(loadAll));
  $("choose-files").addEventListener("click", () => $("file-input").click());
  $("file-input").addEventListener("change", () => {
    uploadAll($("file-input").files);
    $("file-input").value = "";
  });
  $("details-close").addEventListener("click", closeDetails);
  $("details-download").addEventListener("click", () => state.selected && run(download)(state.selected));
  $("details-delete").addEventListener("click", () => state.selected && run(confirmDelete)(state.selected));
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("details").hidden && !$("confirm-dialog").open) closeDetails();
  });
  wireDragAndDrop();
}
