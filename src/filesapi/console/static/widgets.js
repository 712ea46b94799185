// Shared widgets: DOM building (el, svg), formatting, toasts, error reporting and the header's
// "who am I". Used by every tab.
import { ApiError } from "./api.js";
import { state } from "./state.js";

// Filled in by the entry module (console.js): lets the widgets and tabs sign out or switch tabs
// without importing the entry module, so the imports between modules form no cycle.
export const shell = {
  signOut: (message, requestId) => {},
  showView: (name) => {},
};

export const $ = (id) => document.getElementById(id);

export function el(tag, props, ...children) {
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
export function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

export function fmtBytes(n) {
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
export function fmtDate(value) {
  if (!value) return "—";
  const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
export function fmtClock(epochSeconds) {
  const d = new Date(epochSeconds * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}
export function fmtRelative(iso) {
  const ms = new Date(iso).getTime() - Date.now();
  const abs = Math.abs(ms);
  const [n, unit] =
    abs < 90e3 ? [Math.round(abs / 1e3), "s"]
      : abs < 90 * 60e3 ? [Math.round(abs / 60e3), "min"]
        : abs < 36 * 3600e3 ? [Math.round(abs / 3600e3), "h"]
          : [Math.round(abs / 86400e3), "d"];
  return ms >= 0 ? `in ${n} ${unit}` : `expired ${n} ${unit} ago`;
}

export function toast(message, { error = false, requestId = null, ms } = {}) {
  const node = el("div", { class: error ? "toast error" : "toast", role: error ? "alert" : "status" }, message);
  if (requestId) node.append(el("span", { class: "rid", text: requestId }));
  $("toasts").append(node);
  setTimeout(() => node.remove(), ms || (error ? 9000 : 4000));
}

export function report(err) {
  if (err instanceof ApiError) {
    if (err.status === 401 && state.key) {
      shell.signOut(`The server refused the key: ${err.message}`, err.requestId);
      return;
    }
    toast(err.message, { error: true, requestId: err.requestId });
  } else {
    toast(String((err && err.message) || err), { error: true });
    console.error(err);
  }
}

// Run an async UI action; errors become toasts.
export const run = (fn) => (...args) => Promise.resolve().then(() => fn(...args)).catch(report);

export function renderWho() {
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
