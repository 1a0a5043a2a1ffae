// The observer's pages: the list of deals, and one deal's timeline. Both poll
// the observer's JSON and redraw; a deal's page stops once the deal ended.
"use strict";

const POLL_MS = 500;
const SVG = "http://www.w3.org/2000/svg";
const FINAL = ["completed", "refunded", "mixed"];
const COLORS = {
  proposed: "#8a94a6", registered: "#5d6b85", reserved: "#3559e0", executed: "#12945a",
  cancelled: "#c27a0e", keeper_executed: "#12945a", keeper_cancelled: "#c27a0e",
  decided: "#7a4fd6", completed: "#12945a", refunded: "#c27a0e", mixed: "#c8322b",
  held: "#0e8a9a", disputed: "#b8326b",
};
// A gateway's own "completed" / "refunded" stays in the records table: the
// outcome lane shows the observer's conclusion from both networks.
const LANE_KINDS = ["proposed", "registered", "reserved", "held", "executed", "cancelled", "keeper_executed",
  "keeper_cancelled"];
const OUTCOME_KINDS = ["decided", "disputed", "completed", "refunded", "mixed"];

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function clock(ms) {
  if (!ms) return "—";
  const d = new Date(ms);
  const pad = (n, w) => String(n).padStart(w || 2, "0");
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}`;
}

function offset(ms) {
  const a = Math.abs(ms);
  const text = a < 2000 ? `${Math.round(a)} ms` : a < 120000 ? `${(a / 1000).toFixed(1)} s` : `${(a / 60000).toFixed(1)} min`;
  return (ms < 0 ? "−" : "+") + text;
}

function short(hex) {
  return hex.length > 16 ? `${hex.slice(0, 8)}…${hex.slice(-6)}` : hex;
}

function statusBadge(node, status) {
  node.textContent = status;
  node.className = `status ${status}`;
}

function setLive(text, live) {
  const node = document.getElementById("live");
  node.textContent = text;
  node.className = live ? "bar-note live" : "bar-note";
}

async function fetchJson(url) {
  const response = await fetch(url, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

// ---- the list of deals ------------------------------------------------------

const FILTERS = ["", "running", "completed", "refunded", "mixed", "registered", "proposed"];

function drawFilters(current) {
  const box = document.getElementById("filters");
  box.replaceChildren(...FILTERS.map((f) => {
    const a = el("a", { href: f ? `/?status=${f}` : "/" }, f || "all");
    if (f === current) a.className = "on";
    return a;
  }));
}

function drawDeals(data) {
  const body = document.getElementById("deals");
  if (data.deals.length === 0) {
    body.replaceChildren(el("tr", {}, ""));
    body.firstChild.appendChild(el("td", { colspan: 8, class: "empty" }, "No deals yet: deals that name this observer appear here."));
    return;
  }
  body.replaceChildren(...data.deals.map((deal) => {
    const row = el("tr");
    const link = el("a", { href: `/deals/${deal.deal_id}` });
    link.appendChild(el("code", {}, short(deal.deal_id)));
    const id = el("td");
    id.appendChild(link);
    const status = el("td");
    const badge = el("span");
    statusBadge(badge, deal.status);
    status.appendChild(badge);
    row.append(id, status, el("td", {}, deal.mode), el("td", {}, `${deal.buyer} → ${deal.seller}`),
      el("td", {}, deal.payment), el("td", {}, deal.delivery), el("td", { class: "num" }, deal.records),
      el("td", {}, clock(deal.last_ms)));
    return row;
  }));
}

async function pollDeals() {
  const status = new URLSearchParams(location.search).get("status") || "";
  drawFilters(status);
  for (;;) {
    try {
      drawDeals(await fetchJson(`/api/deals${status ? `?status=${status}` : ""}`));
      setLive("live", true);
    } catch (error) {
      setLive(`cannot reach the observer: ${error.message}`, false);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS * 2));
  }
}

// ---- one deal ----------------------------------------------------------------

function fact(label, value, sub) {
  const box = el("div", { class: "fact" });
  box.append(el("div", { class: "label" }, label), el("div", { class: "value", title: value }, value));
  if (sub) box.appendChild(el("div", { class: "sub" }, sub));
  return box;
}

function drawFacts(deal, t0) {
  const last = deal.records.reduce((m, r) => Math.max(m, r.timestamp_ms), 0);
  const took = t0 && last ? offset(last - t0).slice(1) : "—";
  document.getElementById("facts").replaceChildren(
    fact("Mode", deal.mode, deal.mode === "notary" ? "k-of-n notaries decide" : "hashlock, no third party"),
    fact("Parties", `${deal.buyer} → ${deal.seller}`, "buyer pays, seller delivers"),
    fact("Payment", deal.payment.text, `${deal.payment.network_name}, buyer pays`),
    fact("Delivery", deal.delivery.text, `${deal.delivery.network_name}, seller delivers`),
    fact("Recorded", `${deal.records.length} records`, FINAL.includes(deal.status) ? `ended in ${took}` : `running for ${took}`),
    ...(deal.inspection ? [inspectionFact(deal)] : []),
  );
}

// The inspection window: how long until it closes (on the observer's clock),
// who may dispute, and whether someone did.
function inspectionFact(deal) {
  const { ends_ms: endsMs, disputer, window_ms: windowMs } = deal.inspection;
  const disputed = deal.records.some((r) => r.kind === "disputed");
  const left = endsMs - deal.now_ms;
  const value = disputed ? "disputed" : left > 0 ? `closes in ${offset(left).slice(1)}` : "closed";
  const detail = disputed
    ? "the notaries' operators decide release or reverse"
    : `${offset(windowMs).slice(1)} window; the ${disputer} may dispute, undisputed it releases`;
  return fact("Inspection", value, detail);
}

// A time scale whose first part holds the events and, when the deadlines lie
// far beyond them, a compressed second part that reaches the last deadline.
function makeScale(t0, tEvents, tDeadline, x0, x1) {
  const span = Math.max(tEvents - t0, 50);
  const pad = span * 0.06;
  const start = t0 - pad;
  const end = tEvents + pad;
  if (tDeadline <= end + span * 0.35) {
    const last = Math.max(end, tDeadline + pad);
    return { broken: false, x: (t) => x0 + ((t - start) / (last - start)) * (x1 - x0), start, end: last };
  }
  const xBreak = x0 + (x1 - x0) * 0.72;
  const farEnd = tDeadline + (tDeadline - end) * 0.04;
  const x = (t) => (t <= end
    ? x0 + ((t - start) / (end - start)) * (xBreak - x0)
    : xBreak + 14 + ((t - end) / (farEnd - end)) * (x1 - xBreak - 14));
  return { broken: true, x, start, end, xBreak, farEnd };
}

function niceStep(span) {
  const raw = span / 6;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

// Places each label in the first row where it does not overlap the one before.
function placeLabels(items, rowsMax) {
  const rowEnds = [];
  for (const item of items) {
    const half = item.width / 2;
    let row = rowEnds.findIndex((endX) => item.x - half > endX + 6);
    if (row < 0) row = rowEnds.length < rowsMax ? rowEnds.length : rowEnds.indexOf(Math.min(...rowEnds));
    rowEnds[row] = item.x + half;
    item.row = row;
  }
  return Math.max(1, rowEnds.length);
}

function marker(kind, x, y) {
  const color = COLORS[kind] || "#8a94a6";
  if (kind === "decided") {
    return svg("path", { d: `M${x} ${y - 8} L${x + 8} ${y} L${x} ${y + 8} L${x - 8} ${y} Z`, fill: color });
  }
  if (FINAL.includes(kind)) {
    const g = svg("g");
    g.append(svg("circle", { cx: x, cy: y, r: 10, fill: color }));
    const mark = kind === "completed" ? `M${x - 4.5} ${y} l3 3.2 l6 -6.5` : `M${x - 4} ${y - 4} l8 8 M${x + 4} ${y - 4} l-8 8`;
    g.append(svg("path", { d: mark, stroke: "#fff", "stroke-width": 2.2, fill: "none", "stroke-linecap": "round" }));
    return g;
  }
  if (kind.startsWith("keeper_")) {
    return svg("circle", { cx: x, cy: y, r: 6.5, fill: "#fff", stroke: color, "stroke-width": 2.5 });
  }
  const r = kind === "proposed" || kind === "registered" ? 5 : 7;
  return svg("circle", { cx: x, cy: y, r, fill: color, stroke: "#fff", "stroke-width": 1.5 });
}

function drawTimeline(deal, t0) {
  const box = document.getElementById("timeline");
  // The observer's own conclusions (network 0) go to the outcome lane; each
  // network's steps to that network's lane.
  // A notary's decision and a dispute concern the whole deal, whichever gateway told.
  const outcome = (r) => r.kind === "decided" || r.kind === "disputed" || (r.network === 0 && OUTCOME_KINDS.includes(r.kind));
  const drawn = deal.records.filter((r) => r.timestamp_ms > 0 && (LANE_KINDS.includes(r.kind) || outcome(r)));
  // Both gateways tell of a dispute (one event id): it is drawn once.
  const shown = drawn.filter((r, i) => r.kind !== "disputed" || drawn.findIndex((o) => o.kind === r.kind) === i);
  if (shown.length === 0) return;
  const networks = [deal.payment, deal.delivery].filter((leg, i, all) => all.findIndex((o) => o.network === leg.network) === i);
  const lanes = networks.map((leg) => ({
    key: leg.network, title: leg.network_name,
    sub: leg === deal.payment ? `payment · ${deal.payment.text.split(" on ")[0]}` : `delivery · ${deal.delivery.text.split(" on ")[0]}`,
    records: shown.filter((r) => !outcome(r) && LANE_KINDS.includes(r.kind) && r.network === leg.network),
  }));
  if (networks.length === 1) lanes[0].sub = "payment and delivery";
  lanes.push({ key: "outcome", title: "outcome", sub: deal.mode === "notary" ? "notaries, end of deal" : "end of deal",
    records: shown.filter(outcome) });

  const width = 1160, x0 = 170, x1 = width - 36;
  const tEvents = Math.max(...shown.map((r) => r.timestamp_ms), deal.final ? 0 : deal.now_ms);
  const tDeadline = Math.max(...deal.deadlines.map((d) => d.at_ms));
  const scale = makeScale(t0, tEvents, tDeadline, x0, x1);
  // Deadline labels take up to three rows above the lanes; one near the right
  // edge ends at its line, so it is placed by the middle of where it lies.
  const deadlines = deal.deadlines.map((d) => {
    const lineX = scale.x(d.at_ms), width = d.label.length * 6.5 + 60, end = lineX > x1 - 90;
    return { d, lineX, end, width, x: end ? lineX - width / 2 : lineX };
  });
  const top = 16 + Math.max(2, placeLabels(deadlines, 3)) * 15;

  // Lay out each lane's labels, then the lanes' heights.
  let y = top;
  for (const lane of lanes) {
    const items = lane.records.map((r) => ({ r, x: scale.x(r.timestamp_ms), width: Math.max(r.kind.length * 7, 54) }));
    items.sort((a, b) => a.x - b.x);
    // Steps a few milliseconds apart would hide each other: set them apart.
    items.forEach((item, i) => { item.dot = i > 0 ? Math.max(item.x, items[i - 1].dot + 16) : item.x; });
    lane.items = items;
    lane.rows = placeLabels(items, 4);
    lane.y = y;
    lane.height = 40 + lane.rows * 30;
    y += lane.height + 8;
  }
  const height = y + 26;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "timeline of the deal" });

  for (const lane of lanes) {
    root.append(svg("rect", { class: "lane-bg", x: 8, y: lane.y, width: width - 16, height: lane.height, rx: 8 }));
    root.append(svg("text", { class: "lane-label", x: 22, y: lane.y + 24 }, lane.title));
    root.append(svg("text", { class: "lane-sub", x: 22, y: lane.y + 40 }, lane.sub));
  }

  // The axis: ticks over the events, the deadlines' own ticks beyond the break.
  const axisY = y + 4;
  const step = niceStep(scale.end - scale.start);
  const ticks = [];
  for (let t = Math.ceil((scale.start - t0) / step) * step; t0 + t <= scale.end; t += step) ticks.push(t);
  for (const t of ticks) {
    const x = scale.x(t0 + t);
    root.append(svg("line", { class: "grid", x1: x, x2: x, y1: top, y2: axisY }));
    root.append(svg("text", { class: "tick", x, y: axisY + 16, "text-anchor": "middle" }, offset(t)));
  }
  root.append(svg("line", { class: "axis", x1: x0, x2: scale.broken ? scale.xBreak : x1, y1: axisY, y2: axisY }));
  if (scale.broken) {
    const xb = scale.xBreak;
    root.append(svg("line", { class: "axis", x1: xb + 14, x2: x1, y1: axisY, y2: axisY }));
    for (const dx of [0, 14]) {
      root.append(svg("path", { class: "break", d: `M${xb + dx - 4} ${axisY + 6} L${xb + dx + 4} ${axisY - 6}` }));
    }
    root.append(svg("text", { class: "tick", x: xb + 7, y: axisY + 16, "text-anchor": "middle" }, "…"));
  }

  // Deadlines: dashed lines over every lane, labelled above.
  for (const { d, lineX: x, end, row } of deadlines) {
    root.append(svg("line", { class: "deadline", x1: x, x2: x, y1: top - 4, y2: axisY }));
    const lane = d.network === null ? "" : ` (${(networks.find((n) => n.network === d.network) || {}).network_name || d.network})`;
    const label = svg("text", { class: "deadline-label", x, y: 16 + row * 15, "text-anchor": end ? "end" : "middle" },
      `${d.label}${lane} ${offset(d.at_ms - t0)}`);
    label.append(svg("title", {}, `${d.label}: ${clock(d.at_ms)} UTC`));
    root.append(label);
  }
  if (!deal.final) {
    const x = scale.x(deal.now_ms);
    root.append(svg("line", { class: "now", x1: x, x2: x, y1: top - 4, y2: axisY }));
    root.append(svg("text", { class: "now-label", x: x + 4, y: axisY - 4 }, "now"));
  }

  // Events: a marker on the lane's line, its label in its row below.
  for (const lane of lanes) {
    const lineY = lane.y + 22;
    root.append(svg("line", { class: "grid", x1: x0, x2: x1, y1: lineY, y2: lineY }));
    for (const item of lane.items) {
      const labelY = lineY + 30 + item.row * 30;
      root.append(svg("line", { class: "stem", x1: item.dot, x2: item.x, y1: lineY + 8, y2: labelY - 11 }));
      const g = svg("g");
      g.append(marker(item.r.kind, item.dot, lineY));
      g.append(svg("title", {}, `#${item.r.seq} ${item.r.kind} at ${clock(item.r.timestamp_ms)} UTC` +
        (item.r.height ? `, block ${item.r.height}` : "") + `\n${item.r.text || ""}`));
      root.append(g);
      root.append(svg("text", { class: "ev-label", x: item.x, y: labelY, "text-anchor": "middle" }, item.r.kind.replace("_", " ")));
      root.append(svg("text", { class: "ev-time", x: item.x, y: labelY + 12, "text-anchor": "middle" }, offset(item.r.timestamp_ms - t0)));
    }
  }
  box.replaceChildren(root);
}

function drawLegend() {
  const entries = [["reserved", COLORS.reserved], ["held for inspection", COLORS.held], ["executed", COLORS.executed],
    ["cancelled / refunded", COLORS.cancelled], ["notary decision", COLORS.decided], ["disputed", COLORS.disputed],
    ["proposed / registered", COLORS.proposed]];
  const legend = document.getElementById("legend");
  legend.replaceChildren(...entries.map(([label, color]) => {
    const s = el("span", { style: `--c: ${color}` }, label);
    return s;
  }), el("span", { class: "dash", style: "--c: #c8322b" }, "deadline"));
}

function drawRecords(deal, t0) {
  const body = document.getElementById("records");
  body.replaceChildren(...deal.records.map((r) => {
    const row = el("tr", { class: r.network === 0 || r.kind === "decided" ? "derived" : "" });
    const kind = el("td");
    kind.appendChild(el("span", { class: `kind ${r.kind}` }, r.kind));
    const when = r.timestamp_ms ? `${clock(r.timestamp_ms)} (${offset(r.timestamp_ms - t0)})` : "—";
    row.append(el("td", { class: "num" }, r.seq), el("td", { class: "when" }, when), el("td", {}, r.network_name),
      el("td", { class: "num" }, r.height || "—"), kind, el("td", {}, r.text || ""),
      el("td", { class: "hash", title: r.hash }, short(r.hash)));
    return row;
  }));
  const note = document.getElementById("chain-note");
  note.replaceChildren("Each record's hash covers the previous record's hash; every record is signed by the observer key ",
    el("code", {}, deal.observer_key), ". Check the whole chain with ", el("code", {}, "interlock observer verify"), ".");
}

async function pollDeal() {
  const id = location.pathname.split("/").filter(Boolean).pop();
  document.getElementById("deal-id").textContent = short(id);
  document.getElementById("deal-id").title = id;
  document.title = `Interlock observer · deal ${short(id)}`;
  drawLegend();
  for (;;) {
    let deal = null;
    try {
      deal = await fetchJson(`/api/deals/${id}`);
      const times = deal.records.map((r) => r.timestamp_ms).filter((t) => t > 0);
      const t0 = times.length ? Math.min(...times) : deal.now_ms;
      statusBadge(document.getElementById("status"), deal.status);
      drawFacts(deal, t0);
      drawTimeline(deal, t0);
      drawRecords(deal, t0);
      document.getElementById("error").hidden = true;
      setLive(deal.final ? `deal ${deal.status}` : "live", !deal.final);
    } catch (error) {
      const box = document.getElementById("error");
      box.textContent = `cannot read the deal: ${error.message}`;
      box.hidden = false;
      setLive("not reachable", false);
    }
    if (deal && deal.final) return;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

if (document.body.dataset.page === "deal") pollDeal(); else pollDeals();
