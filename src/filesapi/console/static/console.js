// filesapi console: plain JS, no build, no dependencies. Served with a strict CSP (script-src 'self').
//
// Everything goes through the normal Files API with the user's key (GA dialect) plus two JSON
// endpoints of the console (/v1/console/requests, /v1/console/storage). The key lives in this tab's
// sessionStorage only. Uploaded content is never put into the DOM as markup: images are shown with
// <img src="blob:..."> (an SVG in an <img> cannot run script), PDFs in a sandboxed iframe, text via
// textContent; HTML is shown as its source text.
"use strict";

(() => {
  const API_VERSION = "2026-10-21";
  const KEY_STORAGE = "filesapi.console.key";
  const PAGE_SIZE = 50;
  const MAX_PAGE = 1000;
  const POLL_MS = 1500;
  const MAX_REQUESTS = 500;
  const TEXT_PREVIEW_BYTES = 256 * 1024;
  const MEDIA_PREVIEW_BYTES = 50 * 1000 * 1000;
  const IMAGE_TYPES = /^image\/(png|jpeg|gif|webp|avif|bmp|svg\+xml|x-icon|vnd\.microsoft\.icon)$/;
  const TEXT_TYPES = /^(text\/.*|application\/(json|x-ndjson|xml|javascript|x-yaml|yaml|toml|x-sh|sql|csv|ld\+json)|.*\+(json|xml))$/;

  const $ = (id) => document.getElementById(id);

  const state = {
    key: null,
    info: null, // answer of /v1/console/storage: workspace, admin, quotas
    view: "files",
    files: [],
    nextPage: null,
    filesToken: 0,
    loadingAll: false,
    scope: "",
    nameFilter: "",
    selected: null,
    previewToken: 0,
    previewUrls: [],
    requests: [],
    pendingRequests: [],
    lastSeqs: {}, // per server process (each worker of --workers N numbers its own requests)
    paused: false,
    unseen: 0,
    ownRequestIds: new Set(),
    pollTimer: null,
    polling: false,
    refreshTimer: null,
  };

  // ---------------------------------------------------------------- helpers

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [name, value] of Object.entries(props)) {
        if (value === undefined || value === null || value === false) continue;
        if (name === "class") node.className = value;
        else if (name === "text") node.textContent = value;
        else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
        else if (name === "dataset") Object.assign(node.dataset, value);
        else node.setAttribute(name, value === true ? "" : String(value));
      }
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const SVG_NS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function fmtBytes(n) {
    if (n === null || n === undefined) return "—";
    if (n < 1000) return `${n} B`;
    const units = ["KB", "MB", "GB", "TB", "PB"];
    let value = n;
    let i = -1;
    do {
      value /= 1000;
      i += 1;
    } while (value >= 1000 && i < units.length - 1);
    const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
    return `${value.toFixed(digits)} ${units[i]}`;
  }

  const pad = (n, w = 2) => String(n).padStart(w, "0");
  function fmtDate(value) {
    if (!value) return "—";
    const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    if (Number.isNaN(d.getTime())) return String(value);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  function fmtClock(epochSeconds) {
    const d = new Date(epochSeconds * 1000);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }
  function fmtRelative(iso) {
    const ms = new Date(iso).getTime() - Date.now();
    const abs = Math.abs(ms);
    const [n, unit] =
      abs < 90e3 ? [Math.round(abs / 1e3), "s"]
        : abs < 90 * 60e3 ? [Math.round(abs / 60e3), "min"]
          : abs < 36 * 3600e3 ? [Math.round(abs / 3600e3), "h"]
            : [Math.round(abs / 86400e3), "d"];
    return ms >= 0 ? `in ${n} ${unit}` : `expired ${n} ${unit} ago`;
  }
  const isExpired = (file) => Boolean(file.expires_at) && new Date(file.expires_at).getTime() <= Date.now();

  class ApiError extends Error {
    constructor(status, type, message, requestId) {
      super(message);
      this.status = status;
      this.type = type;
      this.requestId = requestId;
    }
  }

  function errorFromBody(status, text, requestId) {
    let type = "api_error";
    let message = `The server answered ${status}.`;
    try {
      const body = JSON.parse(text);
      if (body && body.error) {
        type = body.error.type || type;
        message = body.error.message || message;
      }
      requestId = body.request_id || requestId;
    } catch (_) {
      /* not an error envelope: keep the generic message */
    }
    return new ApiError(status, type, message, requestId);
  }

  function headers(extra) {
    // x-filesapi-proxy: downloads come through this server even when it could redirect them to
    // the bucket (which a browser could only follow with CORS set up there).
    return { "x-api-key": state.key, "anthropic-version": API_VERSION, "x-filesapi-proxy": "1", ...extra };
  }

  // fetch() against this server with the key. Returns the parsed JSON, or the Response with raw.
  async function api(path, { method = "GET", extraHeaders, raw = false } = {}) {
    let response;
    try {
      response = await fetch(path, {
        method,
        headers: headers(extraHeaders),
        cache: "no-store",
        credentials: "omit",
        redirect: "error",
      });
    } catch (err) {
      throw new ApiError(0, "network_error", `The server did not answer (${err.message}).`, null);
    }
    const requestId = response.headers.get("request-id");
    if (requestId) rememberOwn(requestId);
    if (!response.ok) throw errorFromBody(response.status, await response.text(), requestId);
    return raw ? response : response.json();
  }

  function rememberOwn(requestId) {
    state.ownRequestIds.add(requestId);
    if (state.ownRequestIds.size > 2000) {
      const first = state.ownRequestIds.values().next().value;
      state.ownRequestIds.delete(first);
    }
  }

  function toast(message, { error = false, requestId = null, ms } = {}) {
    const node = el("div", { class: error ? "toast error" : "toast", role: error ? "alert" : "status" }, message);
    if (requestId) node.append(el("span", { class: "rid", text: requestId }));
    $("toasts").append(node);
    setTimeout(() => node.remove(), ms || (error ? 9000 : 4000));
  }

  function report(err) {
    if (err instanceof ApiError) {
      if (err.status === 401 && state.key) {
        signOut(`The server refused the key: ${err.message}`, err.requestId);
        return;
      }
      toast(err.message, { error: true, requestId: err.requestId });
    } else {
      toast(String((err && err.message) || err), { error: true });
      console.error(err);
    }
  }

  // Run an async UI action; errors become toasts.
  const run = (fn) => (...args) => Promise.resolve().then(() => fn(...args)).catch(report);

  // ---------------------------------------------------------------- sign in

  function showSignIn(message, requestId) {
    for (const id of ["view-files", "view-requests", "view-storage", "tabs", "who"]) $(id).hidden = true;
    $("view-signin").hidden = false;
    const box = $("signin-error");
    box.replaceChildren();
    if (message) {
      box.append(message);
      if (requestId) box.append(el("span", { class: "rid", text: requestId }));
      box.hidden = false;
    } else {
      box.hidden = true;
    }
    $("signin-key").focus();
  }

  async function signIn(key) {
    key = key.trim();
    if (!key) {
      showSignIn("Enter an API key.");
      return;
    }
    $("signin-submit").disabled = true;
    state.key = key;
    try {
      state.info = await api("v1/console/storage");
    } catch (err) {
      state.key = null;
      sessionStorage.removeItem(KEY_STORAGE);
      const detail = err instanceof ApiError && err.status ? ` (${err.status} ${err.type})` : "";
      showSignIn(`${err.message}${detail}`, err.requestId);
      return;
    } finally {
      $("signin-submit").disabled = false;
    }
    sessionStorage.setItem(KEY_STORAGE, key);
    $("signin-key").value = "";
    $("signin-error").hidden = true;
    $("view-signin").hidden = true;
    $("tabs").hidden = false;
    $("who").hidden = false;
    renderWho();
    const wanted = location.hash.slice(1);
    showView(["files", "requests", "storage"].includes(wanted) ? wanted : "files");
    run(loadFiles)();
    startPolling();
  }

  function signOut(message, requestId) {
    state.key = null;
    state.info = null;
    state.files = [];
    state.nextPage = null;
    state.requests = [];
    state.pendingRequests = [];
    state.lastSeqs = {};
    state.unseen = 0;
    sessionStorage.removeItem(KEY_STORAGE);
    stopPolling();
    closeDetails();
    $("files-body").replaceChildren();
    $("requests-body").replaceChildren();
    $("uploads").replaceChildren();
    showSignIn(message, requestId);
  }

  function renderWho() {
    const info = state.info;
    const node = $("who-name");
    node.replaceChildren();
    node.append(el("strong", { text: info.workspace.name }));
    const notes = [];
    if (info.admin) notes.push("admin key");
    notes.push(info.auth === "open" ? "open mode" : "keys mode");
    node.append(` · ${notes.join(" · ")}`);
    node.title = `Workspace ${info.workspace.id}`;
  }

  // ---------------------------------------------------------------- views

  function showView(name) {
    state.view = name;
    for (const view of ["files", "requests", "storage"]) {
      $(`view-${view}`).hidden = view !== name;
      $(`tab-${view}`).classList.toggle("active", view === name);
      $(`tab-${view}`).setAttribute("aria-selected", String(view === name));
    }
    if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
    if (name === "requests") {
      state.unseen = 0;
      renderBadge();
      renderRequests();
      pollRequests();
    }
    if (name === "storage") run(loadStorage)();
  }

  // ---------------------------------------------------------------- files

  async function loadFiles({ append = false, limit = PAGE_SIZE } = {}) {
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
  function scheduleFilesRefresh() {
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

  function renderFiles() {
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

  function closeDetails() {
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

  function uploadAll(fileList) {
    const files = Array.from(fileList || []);
    if (!state.key || !files.length) return;
    if (state.view !== "files") showView("files");
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

  // ---------------------------------------------------------------- request log

  function startPolling() {
    stopPolling();
    state.pollTimer = setInterval(() => {
      if (!document.hidden) pollRequests();
    }, POLL_MS);
    pollRequests();
  }

  function stopPolling() {
    clearInterval(state.pollTimer);
    state.pollTimer = null;
  }

  async function pollRequests() {
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

  function renderBadge() {
    const badge = $("requests-badge");
    badge.hidden = state.unseen === 0;
    badge.textContent = state.unseen > 99 ? "99+" : String(state.unseen);
  }

  function renderRequests(freshIds = new Set()) {
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

  // ---------------------------------------------------------------- storage

  async function loadStorage() {
    const info = await api("v1/console/storage");
    state.info = info;
    renderWho();
    renderStorage(info);
  }

  function stat(label, value, sub) {
    return el("div", { class: "card stat" },
      el("div", { class: "label", text: label }),
      el("div", { class: "value", text: value }),
      sub ? el("div", { class: "sub", text: sub }) : null);
  }

  function renderStorage(info) {
    const quota = info.quota_bytes;
    const many = info.workspaces.length > 1;
    // One workspace: the caller's. Several (admin): the fullest one is the one to watch.
    const own = many
      ? info.workspaces.reduce((a, b) => (b.bytes > a.bytes ? b : a))
      : info.workspaces.find((w) => w.id === info.workspace.id) || { name: info.workspace.name, files: 0, bytes: 0 };
    const cards = [
      stat("Files", info.total.files.toLocaleString("en-US"), many ? `in ${info.workspaces.length} workspaces` : `in ${info.workspace.name}`),
      stat("Stored", fmtBytes(info.total.bytes), `${info.total.bytes.toLocaleString("en-US")} bytes`),
      stat("Quota used", quota ? `${((own.bytes / quota) * 100).toFixed(own.bytes / quota < 0.1 ? 2 : 1)}%` : "no quota",
        quota ? `${fmtBytes(own.bytes)} of ${fmtBytes(quota)} in ${many ? "the fullest, " : ""}${own.name}` : "unlimited bytes per workspace"),
      stat("Largest upload", fmtBytes(info.max_file_size), info.uploads_downloadable ? "uploads are downloadable" : "uploads are not downloadable (hosted profile)"),
    ];
    $("storage-cards").replaceChildren(...cards);
    $("storage-chart").replaceChildren(chart(info.workspaces, quota));
    $("storage-body").replaceChildren(...info.workspaces.map((w) => el("tr", { dataset: { workspace: w.name } },
      el("td", { class: "name", text: w.name }),
      el("td", { class: "id", text: w.id }),
      el("td", { class: "num files", text: w.files.toLocaleString("en-US") }),
      el("td", { class: "num bytes", title: `${w.bytes} bytes`, text: fmtBytes(w.bytes) }),
      el("td", { class: "num", text: quota ? fmtBytes(quota) : "—" }),
      el("td", { class: "num", text: quota ? `${((w.bytes / quota) * 100).toFixed(2)}%` : "—" }),
    )));
  }

  // A horizontal bar per workspace: against the quota when there is one, else against the largest.
  function chart(workspaces, quota) {
    const width = 760;
    const labelW = 150;
    const valueW = 190;
    const barW = width - labelW - valueW - 20;
    const rowH = 30;
    const height = Math.max(1, workspaces.length) * rowH + 6;
    const scale = quota || Math.max(1, ...workspaces.map((w) => w.bytes));
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": "Bytes stored per workspace" });
    workspaces.forEach((w, i) => {
      const y = i * rowH + 4;
      const filled = Math.max(w.bytes > 0 ? 2 : 0, Math.round((Math.min(w.bytes, scale) / scale) * barW));
      const g = svg("g", { class: "row" });
      g.append(
        svg("text", { x: 0, y: y + 15, class: "label" }, w.name.length > 20 ? `${w.name.slice(0, 19)}…` : w.name),
        svg("rect", { x: labelW, y: y + 3, width: barW, height: 16, rx: 4, class: "track" }),
        svg("rect", { x: labelW, y: y + 3, width: filled, height: 16, rx: 4, class: quota && w.bytes >= quota ? "bar full" : "bar" }),
        svg("text", { x: labelW + barW + 12, y: y + 15, class: "dim" },
          quota ? `${fmtBytes(w.bytes)} of ${fmtBytes(quota)}` : `${fmtBytes(w.bytes)} · ${w.files} file${w.files === 1 ? "" : "s"}`),
      );
      g.append(svg("title", {}, `${w.name}: ${w.bytes} bytes in ${w.files} files`));
      root.append(g);
    });
    return root;
  }

  // ---------------------------------------------------------------- wiring

  function wire() {
    $("signin-form").addEventListener("submit", (e) => {
      e.preventDefault();
      signIn($("signin-key").value);
    });
    $("sign-out").addEventListener("click", () => signOut());
    for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showView(tab.dataset.view));

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
    window.addEventListener("hashchange", () => {
      const wanted = location.hash.slice(1);
      if (state.key && ["files", "requests", "storage"].includes(wanted) && wanted !== state.view) showView(wanted);
    });
    wireDragAndDrop();
  }

  function start() {
    wire();
    const saved = sessionStorage.getItem(KEY_STORAGE);
    if (saved) signIn(saved);
    else showSignIn();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
