// The Storage tab: files, bytes and quota per workspace (from /v1/console/storage), with an SVG chart.
import { api } from "./api.js";
import { state } from "./state.js";
import { $, el, fmtBytes, renderWho, svg } from "./widgets.js";

// ---------------------------------------------------------------- storage

export async function loadStorage() {
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
