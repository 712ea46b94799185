// filesapi console: plain JS, no build, no dependencies. Served with a strict CSP (script-src 'self').
//
// Everything goes through the normal Files API with the user's key (GA dialect) plus two JSON
// endpoints of the console (/v1/console/requests, /v1/console/storage). The key lives in this tab's
// sessionStorage only. Uploaded content is never put into the DOM as markup: images are shown with
// <img src="blob:..."> (an SVG in an <img> cannot run script), PDFs in a sandboxed iframe, text via
// textContent; HTML is shown as its source text.
//
// This is the entry module (sign-in, sign-out, switching tabs); the rest are native ES modules next to
// it: api.js (the API client), state.js, widgets.js (shared widgets), and one module per tab:
// files.js, requests.js, storage.js. index.html loads this one from console/static/<version>/, so
// every relative import ("./api.js") resolves under the same versioned path: a new release is a new
// URL for every module, and a module never needs to spell the version itself.
import { api, ApiError } from "./api.js";
import { closeDetails, loadFiles, wireFiles } from "./files.js";
import { pollRequests, renderBadge, renderRequests, startPolling, stopPolling, wireRequests } from "./requests.js";
import { state } from "./state.js";
import { loadStorage } from "./storage.js";
import { $, el, renderWho, run, shell } from "./widgets.js";

const KEY_STORAGE = "filesapi.console.key";

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

// ---------------------------------------------------------------- wiring

function wire() {
  $("signin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    signIn($("signin-key").value);
  });
  $("sign-out").addEventListener("click", () => signOut());
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showView(tab.dataset.view));
  wireFiles();
  wireRequests();
  window.addEventListener("hashchange", () => {
    const wanted = location.hash.slice(1);
    if (state.key && ["files", "requests", "storage"].includes(wanted) && wanted !== state.view) showView(wanted);
  });
}

function start() {
  shell.signOut = signOut;
  shell.showView = showView;
  wire();
  const saved = sessionStorage.getItem(KEY_STORAGE);
  if (saved) signIn(saved);
  else showSignIn();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
