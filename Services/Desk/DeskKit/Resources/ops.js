// Baton operations dashboard: GET /api/ops every few seconds, drawn with SVG from here. Text from the processes is
// only ever inserted as text.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const REFRESH_MS = 5000;

const reasonNames = {
  FAILOVER_REASON_UNDESIGNED: "undesigned escalation",
  FAILOVER_REASON_NO_BRIEF_BEFORE_CONNECT: "no brief before connect",
  FAILOVER_REASON_GREETED_LATE: "greeted after 8 s",
  FAILOVER_REASON_REPEATED: "caller repeated facts",
  FAILOVER_REASON_TRANSFER_FAILED: "transfer failed",
  FAILOVER_REASON_ABANDONED: "abandoned before hello",
};

function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

const n = (value) => Number(value || 0);
const seconds = (ms) => (ms === undefined || ms === null ? "–" : n(ms) < 1000 ? n(ms) + " ms" : (n(ms) / 1000).toFixed(1) + " s");

function table(node, headers, rows) {
  clear(node);
  const head = el("tr", "");
  for (const header of headers) head.append(el("th", "", header));
  node.append(el("thead", "", head));
  const body = el("tbody", "");
  for (const row of rows) {
    const line = el("tr", "");
    for (const cell of row) line.append(el("td", "", cell));
    body.append(line);
  }
  if (!rows.length) {
    const line = el("tr", "");
    const cell = el("td", "quiet", "Nothing yet.");
    cell.colSpan = headers.length;
    line.append(cell);
    body.append(line);
  }
  node.append(body);
}

function tiles(figures) {
  const node = $("tiles");
  clear(node);
  const ttlh = figures.timeToLiveHuman || {};
  const ttcr = figures.timeToContextReady || {};
  const items = [
    ["Handoffs", n(figures.handoffs)],
    ["Failovers", n(figures.failovers)],
    ["In progress", n(figures.inProgress)],
    ["Live human p50", seconds(ttlh.p50Ms)],
    ["Live human p90", seconds(ttlh.p90Ms)],
    ["Context ready p50", seconds(ttcr.p50Ms)],
    ["Context ready p99", seconds(ttcr.p99Ms)],
    ["Repeats per handoff", n(figures.repeatsPerHandoff).toFixed(2)],
  ];
  for (const [label, value] of items) node.append(el("div", "tile", el("div", "value", value), el("div", "label", label)));
}

// Time to a live human, in 1 s bins up to 25 s (the last bin holds everything later).
function histogram(handoffs) {
  const node = $("histogram");
  clear(node);
  const bins = new Array(26).fill(0);
  for (const handoff of handoffs) {
    if (handoff.timeToLiveHumanMs === undefined) continue;
    bins[Math.min(25, Math.floor(n(handoff.timeToLiveHumanMs) / 1000))] += 1;
  }
  const width = 560, height = 220, left = 36, bottom = 28, top = 10;
  const plot = width - left - 10, tall = height - bottom - top;
  const step = plot / bins.length;
  const most = Math.max(1, ...bins);
  const x = (s) => left + s * step;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Histogram of time to a live human" });
  chart.append(svg("rect", { x: x(4), y: top, width: 2 * step, height: tall, fill: "#d6f0dc" }));
  chart.append(svg("text", { x: x(4) + 2, y: top + 12 }, "4–6 s"));
  bins.forEach((count, index) => {
    const h = (count / most) * tall;
    const bar = svg("rect", { x: x(index) + 1, y: top + tall - h, width: step - 2, height: h, fill: index >= 8 ? "#b33a3a" : "#0b4f8a" });
    bar.append(svg("title", {}, `${index}${index === 25 ? "+" : "–" + (index + 1)} s: ${count}`));
    chart.append(bar);
  });
  for (const [at, text] of [[8, "8 s"], [20, "20 s"]]) {
    chart.append(svg("line", { x1: x(at), x2: x(at), y1: top, y2: top + tall, stroke: "#8f1919", "stroke-width": 2, "stroke-dasharray": "4 3" }));
    chart.append(svg("text", { x: x(at) + 3, y: top + 24 }, text));
  }
  chart.append(svg("line", { x1: left, x2: left + plot, y1: top + tall, y2: top + tall, stroke: "#111820" }));
  for (const at of [0, 4, 6, 8, 12, 16, 20, 25]) chart.append(svg("text", { x: x(at), y: height - 10 }, at === 25 ? "25+" : at));
  chart.append(svg("text", { x: 2, y: top + 10 }, most));
  chart.append(svg("text", { x: 2, y: top + tall }, 0));
  node.append(chart);
}

// Horizontal bars: [label, value, colour] rows.
function bars(node, label, rows) {
  clear(node);
  const width = 560, row = 26, left = 190;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${Math.max(1, rows.length) * row + 8}`, role: "img", "aria-label": label });
  const most = Math.max(1, ...rows.map((r) => r[1]));
  rows.forEach(([name, value, colour], index) => {
    const y = 4 + index * row;
    chart.append(svg("text", { x: 0, y: y + 16 }, name));
    chart.append(svg("rect", { x: left, y, width: Math.max(1, ((width - left - 50) * value) / most), height: row - 8, fill: colour }));
    chart.append(svg("text", { x: left + ((width - left - 50) * value) / most + 6, y: y + 16 }, value));
  });
  if (!rows.length) chart.append(svg("text", { x: 0, y: 20 }, "No failovers in the last hour."));
  node.append(chart);
}

function groups(node, summary) {
  const rows = ((summary && summary.groups) || []).map((group) => {
    const figures = group.figures || {};
    const ttlh = figures.timeToLiveHuman || {};
    const ttcr = figures.timeToContextReady || {};
    const top = (figures.topFailoverReasons || [])[0];
    return [
      (group.key || [""])[0] || "(none)",
      n(figures.handoffs),
      n(figures.failovers),
      n(figures.inProgress),
      seconds(ttlh.p50Ms),
      seconds(ttlh.p90Ms),
      seconds(ttcr.p50Ms),
      seconds(ttcr.p99Ms),
      n(figures.repeatsPerHandoff).toFixed(2),
      top ? reasonNames[top.reason] + " (" + n(top.count) + ")" : "–",
    ];
  });
  const headers = ["", "handoffs", "failovers", "in progress", "live human p50", "p90", "context ready p50", "p99", "repeats/handoff", "top failover reason"];
  table(node, headers, rows);
}

function render(data) {
  const now = Date.now();
  const figures = (data.summary && data.summary.overall) || {};
  tiles(figures);
  const handoffs = (data.handoffs && data.handoffs.handoffs) || [];
  histogram(handoffs);
  bars($("versus"), "Handoffs against failovers", [
    ["handoffs", n(figures.handoffs), "#0d5d2c"],
    ["failovers", n(figures.failovers), "#b33a3a"],
    ["in progress", n(figures.inProgress), "#3d4a57"],
  ]);
  bars($("reasons"), "Top failover reasons", (figures.topFailoverReasons || []).map((r) => [reasonNames[r.reason] || r.reason, n(r.count), "#b33a3a"]));
  const progress = handoffs
    .filter((h) => h.classification === "CLASSIFICATION_IN_PROGRESS")
    .map((h) => {
      const a = h.attributes || {};
      const elapsed = Math.max(0, now - n(h.startedAtUnixMs));
      return [h.handoffId, a.workflow || "", a.gate || "(undesigned)", a.destination || "", seconds(elapsed), h.timeToContextReadyMs === undefined ? "not yet" : seconds(h.timeToContextReadyMs)];
    });
  table($("progress"), ["handoff", "workflow", "gate", "destination", "elapsed", "brief on screen after"], progress);
  groups($("by-destination"), data.byDestination);
  groups($("by-workflow"), data.byWorkflow);
  const destinations = ((data.destinations && data.destinations.destinations) || []).map((d) => {
    const availability = d.availability || {};
    return [
      d.id,
      d.kind === "DESTINATION_KIND_PARTNER" ? "partner" : "in house",
      d.openNow ? "open" : "closed",
      n(d.freeAgents) + " of " + n(d.agents),
      n(availability.queueLength),
      n(d.heldReservations) + n(d.acceptedReservations),
      seconds(d.predictedLiveHumanMs),
    ];
  });
  table($("destinations"), ["destination", "kind", "now", "free agents", "queue", "reservations", "predicted live human"], destinations);
  const processes = ((data.processes && data.processes.processes) || []).map((p) => [
    p.name,
    (p.state || "").toLowerCase(),
    n(p.pid) || "–",
    p.uptimeMs ? Math.floor(n(p.uptimeMs) / 1000) + " s" : "–",
    n(p.restarts),
    p.lastError || p.lastExit || "",
  ]);
  table($("processes"), ["process", "state", "pid", "up", "restarts", "last exit"], processes);
  const errors = Object.entries(data.errors || {}).map(([part, why]) => part + ": " + why);
  $("ops-error").textContent = errors.length ? "Some figures are missing: " + errors.join("; ") : "";
  $("updated").textContent = "Updated " + new Date(n(data.computedAtUnixMs)).toLocaleTimeString() + " · every " + REFRESH_MS / 1000 + " s";
}

async function refresh() {
  try {
    const response = await fetch("/api/ops", { credentials: "same-origin" });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      $("ops-error").textContent = response.status === 401 ? "Sign in as a supervisor on the agent screen (/) first." : data.message || response.statusText;
    } else {
      render(data);
    }
  } catch (error) {
    $("ops-error").textContent = "The desk does not answer: " + error.message + ". Retrying.";
  }
  setTimeout(refresh, REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", refresh);
