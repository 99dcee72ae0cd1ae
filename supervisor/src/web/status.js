// The supervisor's status page: polls /api/status and /api/history and
// renders the module table, the interface table and an SVG plot of each
// module's records/s. No framework, nothing loaded from elsewhere.
"use strict";

const POLL_MS = 1000;
const SVG = "http://www.w3.org/2000/svg";
const COLORS = 10; // classes c0..c9 in style.css
let refreshes = 0;
let control = false;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}

function rate(x) {
  if (x === null || x === undefined) return "–";
  return x >= 100 ? Math.round(x).toString() : x.toFixed(1);
}

function showError(text) {
  const e = document.getElementById("error");
  e.textContent = text;
  e.hidden = !text;
}

function say(text) {
  const m = document.getElementById("message");
  m.textContent = text;
  m.hidden = !text;
}

async function act(verb, name) {
  say(verb + " " + name + "…");
  try {
    const r = await fetch("/api/" + verb + "/" + encodeURIComponent(name), {
      method: "POST",
      headers: { "X-Nemea-Control": "1" },
    });
    const text = await r.text();
    let msg = text;
    try { msg = JSON.parse(text).message; } catch (_) { /* plain text */ }
    say((r.ok ? "" : "refused (" + r.status + "): ") + msg);
  } catch (e) {
    say("request failed: " + e);
  }
  refresh();
}

function controls(name) {
  const td = el("td", { class: "control" });
  for (const verb of ["start", "stop", "restart"]) {
    const b = el("button", { type: "button", "data-verb": verb }, verb);
    b.addEventListener("click", () => act(verb, name));
    td.append(b);
  }
  return td;
}

function renderModules(doc) {
  const body = document.querySelector("#modules tbody");
  const rows = [];
  for (const p of doc.profiles) {
    const pr = el("tr", { class: "profile", "data-profile": p.name },
      el("td", { colspan: "2" }, "Profile: " + p.name),
      el("td", { class: p.enabled ? "" : "off" }, String(p.enabled)),
      el("td", { colspan: "6" }, ""));
    if (control) pr.append(controls(p.name));
    rows.push(pr);
    for (const m of p.modules) {
      const state = el("td", { class: "state " + m.state }, m.state);
      if (m.reason) state.append(el("span", { class: "reason" }, m.reason));
      const tr = el("tr", {
        class: "module",
        "data-module": m.name,
        "data-state": m.state,
        "data-pid": String(m.pid),
        "data-restarts": String(m.restarts),
      },
        el("td", { class: "num" }, m.idx),
        el("td", { class: "name" }, m.name),
        el("td", { class: m.enabled ? "" : "off" }, String(m.enabled)),
        state,
        el("td", { class: "num pid" }, m.pid),
        el("td", { class: "num restarts" }, m.restarts),
        el("td", { class: "num" }, m.cpu_user + " / " + m.cpu_system),
        el("td", { class: "num" }, m.state === "running" ? bytes(m.mem_rss) + " / " + bytes(m.mem_vms) : "–"),
        el("td", { class: "num rate" }, rate(m.records_per_s)));
      if (control) tr.append(controls(m.name));
      rows.push(tr);
    }
  }
  body.replaceChildren(...rows);
}

function renderInterfaces(doc) {
  const body = document.querySelector("#interfaces tbody");
  const rows = [];
  for (const p of doc.profiles) {
    for (const m of p.modules) {
      for (const i of m.inputs) {
        rows.push(el("tr", { "data-module": m.name, "data-direction": "in", "data-id": i.id },
          el("td", {}, m.name), el("td", {}, "in"), el("td", {}, i.type), el("td", {}, i.id),
          el("td", {}, i.connected ? "connected" : "not connected"),
          el("td", { class: "num" }, i.messages), el("td", { class: "num rate" }, rate(i.rate)),
          el("td", { class: "num" }, "")));
      }
      for (const o of m.outputs) {
        rows.push(el("tr", { "data-module": m.name, "data-direction": "out", "data-id": o.id },
          el("td", {}, m.name), el("td", {}, "out"), el("td", {}, o.type), el("td", {}, o.id),
          el("td", { class: "num" }, o.clients + (o.clients === 1 ? " client" : " clients")),
          el("td", { class: "num" }, o.sent), el("td", { class: "num rate" }, rate(o.rate)),
          el("td", { class: "num" }, o.dropped)));
      }
    }
  }
  if (rows.length === 0) {
    rows.push(el("tr", {}, el("td", { colspan: "8", class: "off" }, "no running module answers on its service interface yet")));
  }
  body.replaceChildren(...rows);
}

// A round upper bound for the y axis: 1, 2 or 5 times a power of ten.
function niceMax(x) {
  if (!(x > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(x)));
  for (const m of [1, 2, 5, 10]) if (x <= m * p) return m * p;
  return 10 * p;
}

function renderPlot(hist) {
  const plot = document.getElementById("plot");
  const W = 900, H = 280, L = 60, R = 10, T = 10, B = 30;
  const span = hist.capacity * hist.period_s * 1000;
  const t0 = hist.now - span;
  let max = 0, total = 0;
  for (const m of hist.modules) for (const [, r] of m.samples) max = Math.max(max, r);
  const ymax = niceMax(max);
  const x = (t) => L + (W - L - R) * Math.max(0, t - t0) / span;
  const y = (r) => H - B - (H - T - B) * r / ymax;
  const parts = [];
  for (let i = 0; i <= 4; i++) {
    const v = ymax * i / 4;
    parts.push(svg("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    const label = svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" });
    label.textContent = rate(v);
    parts.push(label);
  }
  const minutes = span / 60000;
  for (let i = 0; i <= minutes; i++) {
    const tx = x(hist.now - i * 60000);
    const label = svg("text", { x: tx, y: H - B + 16, "text-anchor": "middle" });
    label.textContent = i === 0 ? "now" : "-" + i + " min";
    parts.push(label);
  }
  parts.push(svg("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }));
  parts.push(svg("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
  const legend = [];
  hist.modules.forEach((m, n) => {
    const c = "c" + (n % COLORS);
    const pts = m.samples.filter(([t]) => t >= t0).map(([t, r]) => x(t).toFixed(1) + "," + y(r).toFixed(1));
    total += pts.length;
    const line = svg("polyline", { class: c, points: pts.join(" "), "data-module": m.name, "data-points": pts.length });
    const title = svg("title", {});
    title.textContent = m.name;
    line.append(title);
    parts.push(line);
    const last = m.samples.length ? m.samples[m.samples.length - 1][1] : null;
    legend.push(el("li", { "data-module": m.name }, el("span", { class: "swatch " + c }), m.name + " (" + rate(last) + "/s)"));
  });
  plot.replaceChildren(...parts);
  plot.setAttribute("data-points", String(total));
  plot.setAttribute("data-ymax", String(ymax));
  document.getElementById("legend").replaceChildren(...legend);
}

async function getJson(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

async function refresh() {
  try {
    const [doc, hist] = await Promise.all([getJson("/api/status"), getJson("/api/history")]);
    control = doc.supervisor.control;
    document.body.classList.toggle("control", control);
    const s = doc.supervisor;
    document.getElementById("about").textContent =
      "nemea-rs " + s.version + ", PID " + s.pid + ", started " + s.started +
      (control ? "; control enabled" : "; read-only (--http-control enables the buttons)");
    renderModules(doc);
    renderInterfaces(doc);
    renderPlot(hist);
    showError("");
    refreshes++;
    document.body.setAttribute("data-refreshes", String(refreshes));
  } catch (e) {
    showError("cannot reach the supervisor: " + e.message);
  }
}

async function loop() {
  await refresh();
  setTimeout(loop, POLL_MS);
}

loop();
