// The profefe web UI: every view is the page's query string, so a link opens the same view.
// Data comes from the /api/0/ read routes only, with the read token when one is set.

const $ = (id) => document.getElementById(id);
const RANGES = { "15m": 900, "1h": 3600, "24h": 86400, "7d": 604800 };
const SNAPSHOT_SAMPLE_TYPES = new Set(["inuse_space", "inuse_objects"]);
const SNAPSHOT_TYPES = new Set(["goroutine", "threadcreate"]);
const FRAME_H = 18;

const state = Object.fromEntries(new URLSearchParams(location.search));
let flame = null;       // the answer being drawn, with layout
let focusIndex = 0;     // node whose subtree fills the width
let tableSort = { key: "flat", desc: true };

// ---------- URL and API ----------

function setState(changes, push = true) {
  Object.assign(state, changes);
  for (const [k, v] of Object.entries(state)) if (v === "" || v == null) delete state[k];
  const url = "/ui/?" + new URLSearchParams(state).toString();
  if (push) history.pushState(null, "", url); else history.replaceState(null, "", url);
}

function utc(seconds) { return new Date(seconds * 1000).toISOString().slice(0, 19); }
function parseUtc(text) { return Math.floor(Date.parse(text.endsWith("Z") ? text : text + "Z") / 1000); }

function window_() {
  if (state.from && state.to) return { from: state.from, to: state.to };
  const span = RANGES[state.range || "1h"] || 3600;
  const now = Math.floor(Date.now() / 1000);
  return { from: utc(now - span), to: utc(now) };
}

function selectionParams(extra = {}) {
  const p = { service: state.service, type: state.type, ...window_() };
  if (state.labels) p.labels = state.labels;
  return { ...p, ...extra };
}

function apiUrl(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") q.set(k, v);
  return `${path}?${q}`;
}

class ApiError extends Error { constructor(status, message) { super(message); this.status = status; } }

async function api(path, params = {}) {
  const headers = {};
  const token = sessionStorage.getItem("profefe-token");
  if (token) headers.Authorization = `Bearer ${token}`;
  const resp = await fetch(apiUrl(path, params), { headers });
  if (resp.status === 401) { $("token-form").hidden = false; throw new ApiError(401, "this collector needs a read token"); }
  const type = resp.headers.get("Content-Type") || "";
  if (!type.startsWith("application/json")) {
    if (!resp.ok) throw new ApiError(resp.status, `HTTP ${resp.status}`);
    return resp;
  }
  const body = await resp.json();
  if (!resp.ok) throw new ApiError(resp.status, body.error || `HTTP ${resp.status}`);
  return body.body;
}

function say(text) { $("message").textContent = text || ""; }

// ---------- formatting ----------

function fmt(value, unit) {
  const v = Math.abs(value);
  const sign = value < 0 ? "-" : "";
  if (unit === "nanoseconds") {
    for (const [d, u] of [[3600e9, "h"], [60e9, "min"], [1e9, "s"], [1e6, "ms"], [1e3, "µs"]]) if (v >= d) return sign + (v / d).toFixed(2) + u;
    return sign + v.toFixed(0) + "ns";
  }
  if (unit === "bytes") {
    for (const [d, u] of [[2 ** 40, "TB"], [2 ** 30, "GB"], [2 ** 20, "MB"], [2 ** 10, "kB"]]) if (v >= d) return sign + (v / d).toFixed(2) + u;
    return sign + v.toFixed(0) + "B";
  }
  if (v >= 1e6) return sign + (v / 1e6).toFixed(2) + "M";
  if (v >= 1e4) return sign + (v / 1e3).toFixed(1) + "k";
  return sign + (Number.isInteger(v) ? v : v.toFixed(2));
}
function pct(part, whole) { return whole ? (100 * part / whole).toFixed(2) + "%" : "-"; }

// ---------- the selection form ----------

async function loadServices() {
  let names = [];
  try { names = await api("/api/0/services"); } catch (e) { if (e.status !== 404) throw e; }
  const sel = $("service");
  sel.replaceChildren(new Option("(pick a service)", ""), ...names.map((n) => new Option(n, n)));
  if (state.service && !names.includes(state.service)) sel.add(new Option(state.service, state.service));
  sel.value = state.service || "";
  $("service-list").replaceChildren(...names.map((n) => {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = "/ui/?" + new URLSearchParams({ service: n, range: "1h" });
    a.textContent = n;
    li.append(a);
    return li;
  }));
  if (!names.length) $("service-list").replaceChildren(Object.assign(document.createElement("li"), { textContent: "No profiles yet: send some (see the README's quickstart)." }));
}

async function loadChoices() {
  const { from, to } = window_();
  const input = $("labels");
  const filter = completedPairs(state.labels || "");
  let found = { types: [], labels: {} };
  try { found = await api("/api/0/labels", { service: state.service, type: state.type, from, to, labels: filter }); } catch (e) { if (e.status !== 404) throw e; }
  const types = found.types.filter((t) => t !== "trace");
  if (!state.type && types.length) setState({ type: types.includes("cpu") ? "cpu" : types[0] }, false);
  const sel = $("type");
  sel.replaceChildren(...types.map((t) => new Option(t, t)));
  if (state.type && !types.includes(state.type)) sel.add(new Option(state.type, state.type));
  sel.value = state.type || "";
  labelChoices[input.id] = { filter, labels: found.labels };
  fillLabelOptions(input);
}

// Per labels input: the pairs the choices were asked under, and the key -> values answered.
const labelChoices = {};

// "k=v,k=v,k=" -> "k=v,k=v": the pairs before the one being typed.
function completedPairs(text) { return text.includes(",") ? text.slice(0, text.lastIndexOf(",")) : ""; }

// Autocomplete for "k=v,k=v": the options complete the last pair typed, with the values that
// exist beside the pairs before it (the API narrows them); a key already chosen is not offered.
async function fillLabelOptions(input) {
  const text = input.value;
  const filter = completedPairs(text);
  let got = labelChoices[input.id];
  if (!got || got.filter !== filter) {
    const { from, to } = window_();
    let labels = {};
    try { labels = (await api("/api/0/labels", { service: state.service, type: state.type, from, to, labels: filter })).labels; }
    catch { return; }  // a pair still being typed may not parse yet
    got = labelChoices[input.id] = { filter, labels };
    if (input.value !== text) return;  // typed on meanwhile: that input's call fills the list
  }
  const head = filter ? filter + "," : "";
  const last = text.slice(head.length);
  const chosen = new Set(filter.split(",").map((p) => p.slice(0, p.indexOf("=")).trim()));
  const options = [];
  if (last.includes("=")) {
    const key = last.slice(0, last.indexOf("="));
    for (const v of got.labels[key] || []) options.push(`${head}${key}=${v}`);
  } else {
    for (const [k, vs] of Object.entries(got.labels)) if (!chosen.has(k)) for (const v of vs) options.push(`${head}${k}=${v}`);
  }
  $("label-options").replaceChildren(...options.slice(0, 500).map((o) => new Option(o, o)));
}

function syncForm() {
  $("range").value = state.from && state.to ? "" : (state.range || "1h");
  const w = window_();
  $("from").value = state.from || w.from;
  $("to").value = state.to || w.to;
  $("fromto").hidden = !(state.from && state.to);
  $("labels").value = state.labels || "";
  $("view").value = state.view || "flame";
  $("diff-form").hidden = state.view !== "diff";
  for (const k of ["base_labels", "base_from", "base_to"]) $(k).value = state[k] || "";
  $("search").value = state.search || "";
}

function readForm() {
  const range = $("range").value;
  const changes = {
    service: $("service").value, type: $("type").value, labels: $("labels").value.trim(),
    view: $("view").value === "flame" ? "" : $("view").value,
    range: range, from: range ? "" : $("from").value.trim(), to: range ? "" : $("to").value.trim(),
    base_labels: $("base_labels").value.trim(), base_from: $("base_from").value.trim(), base_to: $("base_to").value.trim(),
    focus: "",
  };
  if (changes.service !== state.service) Object.assign(changes, { type: "", labels: "", sample_type: "", agg: "" });
  if (changes.type !== state.type) Object.assign(changes, { sample_type: "", agg: "" });
  return changes;
}

// ---------- timeline ----------

async function loadTimeline() {
  const canvas = $("timeline");
  const buckets = Math.max(10, Math.min(200, Math.floor(canvas.clientWidth / 8)));
  const t = await api("/api/0/timeline", selectionParams({ buckets, sample_type: state.sample_type, aggregation: aggregation() }));
  drawTimeline(t);
  $("timeline-title").textContent = `profiles per ${fmtStep(t.step)} (bars) and ${t.aggregation === "mean" ? "mean" : "total"} ${t.sample_type} (line)`
    + (t.without_totals ? ` · ${t.without_totals} profiles without recorded totals` : "");
}

function fmtStep(s) { return s >= 86400 ? `${(s / 86400).toFixed(1)} d` : s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${Math.round(s / 60)} min` : `${s} s`; }

function drawTimeline(t) {
  const canvas = $("timeline");
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = w * dpr; canvas.height = h * dpr;
  const ctx = canvas.getContext("2d");
  ctx.scale(dpr, dpr);
  const n = t.profiles.length;
  const bw = w / n;
  const maxC = Math.max(1, ...t.profiles), maxV = Math.max(1, ...t.values);
  ctx.fillStyle = "#90caf9";
  t.profiles.forEach((c, i) => { const bh = (h - 14) * c / maxC; ctx.fillRect(i * bw + 1, h - 12 - bh, Math.max(1, bw - 2), bh); });
  ctx.strokeStyle = "#e65100"; ctx.lineWidth = 1.5; ctx.beginPath();
  t.values.forEach((v, i) => { const x = i * bw + bw / 2, y = h - 12 - (h - 16) * v / maxV; i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
  ctx.stroke();
  ctx.fillStyle = "#555"; ctx.font = "10px sans-serif";
  ctx.fillText(utc(t.start).replace("T", " "), 2, h - 2);
  const endText = utc(t.start + t.step * n - 1).replace("T", " ");
  ctx.fillText(endText, w - ctx.measureText(endText).width - 2, h - 2);
  canvas.timeline = t;
}

function timelineDrag() {
  const canvas = $("timeline");
  let x0 = null;
  const at = (x) => { const t = canvas.timeline; return t.start + Math.round(x / canvas.clientWidth * t.step * t.profiles.length); };
  canvas.addEventListener("mousedown", (e) => { x0 = e.offsetX; });
  canvas.addEventListener("mousemove", (e) => {
    if (x0 === null || !canvas.timeline) return;
    drawTimeline(canvas.timeline);
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "rgba(255,152,0,0.25)";
    ctx.fillRect(Math.min(x0, e.offsetX), 0, Math.abs(e.offsetX - x0), canvas.clientHeight);
  });
  canvas.addEventListener("mouseup", (e) => {
    if (x0 === null || !canvas.timeline) return;
    const a = Math.min(x0, e.offsetX), b = Math.max(x0, e.offsetX);
    x0 = null;
    if (b - a < 3) { drawTimeline(canvas.timeline); return; }
    setState({ range: "", from: utc(at(a)), to: utc(at(b)), focus: "" });
    render();
  });
}

// ---------- flame graph ----------

function aggregation() {
  if (state.agg) return state.agg;
  const st = state.sample_type || "";
  return SNAPSHOT_TYPES.has(state.type) || SNAPSHOT_SAMPLE_TYPES.has(st) || (state.type === "heap" && !st) ? "mean" : "sum";
}

function layout(data, diff) {
  const n = data.nodes.name.length;
  const x = new Float64Array(n), wdt = new Float64Array(n), parent = new Int32Array(n);
  const weight = new Float64Array(n);
  const bt = data.base_total || 1, tt = data.target_total || 1;
  for (let i = 0; i < n; i++) weight[i] = diff ? (data.nodes.base[i] / bt + data.nodes.target[i] / tt) / 2 : data.nodes.total[i];
  const path = [], next = [];    // per depth: the open ancestor, and where its next child starts
  for (let i = 0; i < n; i++) {
    const d = data.nodes.depth[i];
    if (d === 0) { x[i] = 0; parent[i] = -1; wdt[i] = 1; }
    else {
      const p = path[d - 1];
      parent[i] = p;
      x[i] = next[d - 1];
      wdt[i] = weight[p] ? wdt[p] * weight[i] / weight[p] : 0;
      next[d - 1] += wdt[i];
    }
    path[d] = i; next[d] = x[i];
  }
  let maxDepth = 0;
  for (const d of data.nodes.depth) maxDepth = Math.max(maxDepth, d);
  return { x, wdt, parent, maxDepth, diff };
}

function nodePath(i) {
  const names = [];
  for (; i > 0; i = flame.layout.parent[i]) names.unshift(flame.names[flame.nodes.name[i]]);
  return names.join(";");
}

function findPath(path) {
  if (!path) return 0;
  const want = path.split(";");
  let at = 0;
  for (let i = 1, depth = 1; i < flame.nodes.name.length && depth <= want.length; i++) {
    if (flame.nodes.depth[i] < depth) break;
    if (flame.nodes.depth[i] === depth && flame.layout.parent[i] === at && flame.names[flame.nodes.name[i]] === want[depth - 1]) {
      at = i; depth++;
    }
  }
  return at;
}

function hue(name) { let h = 0; for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0; return h; }

function colour(i, matched) {
  const name = flame.names[flame.nodes.name[i]];
  if (flame.layout.diff) {
    const c = change(i);
    const k = Math.min(1, Math.abs(c) * 8);
    const base = c > 0 ? [229, 57, 53] : [67, 160, 71];
    const mix = (v) => Math.round(235 + (v - 235) * k);
    return `rgb(${mix(base[0])},${mix(base[1])},${mix(base[2])})`;
  }
  if (matched) return "#e040fb";
  if (name === "other") return "#bdbdbd";
  const h = hue(name);
  return `hsl(${20 + (h % 35)}, ${70 + (h >> 8) % 25}%, ${58 + (h >> 16) % 12}%)`;
}

function change(i) {
  const bt = flame.base_total, tt = flame.target_total;
  return (tt ? flame.nodes.target[i] / tt : 0) - (bt ? flame.nodes.base[i] / bt : 0);
}

function searchRegexp() {
  if (!state.search) return null;
  try { return new RegExp(state.search); } catch { return null; }
}

function drawFlame() {
  const canvas = $("flame");
  const L = flame.layout;
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const h = (L.maxDepth + 1) * FRAME_H;
  canvas.style.height = h + "px";
  canvas.width = w * dpr; canvas.height = h * dpr;
  const ctx = canvas.getContext("2d");
  ctx.scale(dpr, dpr);
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "middle";
  const f = focusIndex;
  const fx = L.x[f], fw = L.wdt[f] || 1;
  const ancestors = new Set();
  for (let a = f; a >= 0; a = L.parent[a]) ancestors.add(a);
  const re = searchRegexp();
  const n = flame.nodes.name.length;
  const fEnd = fx + fw;
  const fDepth = flame.nodes.depth[f];
  const boxes = [];
  let matchedShare = 0;
  const matchedUnder = new Int32Array(n);   // 1 when an ancestor already matched
  for (let i = 0; i < n; i++) {
    const d = flame.nodes.depth[i];
    const name = flame.names[flame.nodes.name[i]];
    const p = L.parent[i];
    const matched = re !== null && i > 0 && re.test(name);
    matchedUnder[i] = p >= 0 && (matchedUnder[p] || (re !== null && p > 0 && re.test(flame.names[flame.nodes.name[p]]))) ? 1 : 0;
    if (matched && !matchedUnder[i]) matchedShare += L.diff ? 0 : flame.nodes.total[i];
    let x0, x1;
    if (ancestors.has(i)) { x0 = 0; x1 = w; }
    else {
      if (d <= fDepth || L.x[i] + L.wdt[i] <= fx || L.x[i] >= fEnd) continue;
      x0 = (L.x[i] - fx) / fw * w; x1 = (L.x[i] + L.wdt[i] - fx) / fw * w;
    }
    if (x1 - x0 < 0.5) continue;
    const y = d * FRAME_H;
    ctx.fillStyle = colour(i, matched);
    ctx.globalAlpha = re && !matched && !L.diff ? 0.45 : 1;
    ctx.fillRect(x0, y, Math.max(0.5, x1 - x0 - 0.5), FRAME_H - 1);
    ctx.globalAlpha = 1;
    if (x1 - x0 > 30) {
      ctx.fillStyle = "#111";
      ctx.save(); ctx.beginPath(); ctx.rect(x0, y, x1 - x0 - 2, FRAME_H); ctx.clip();
      ctx.fillText(name, x0 + 3, y + FRAME_H / 2);
      ctx.restore();
    }
    boxes.push([x0, x1, y, i]);
  }
  canvas.boxes = boxes;
  canvas.dataset.drawn = String(boxes.length);
  if (re && !L.diff) $("search-share").textContent = `matches hold ${pct(matchedShare, flame.nodes.total[0])} of the total`;
  else $("search-share").textContent = "";
}

function hit(e) {
  const boxes = $("flame").boxes || [];
  for (const [x0, x1, y, i] of boxes) if (e.offsetX >= x0 && e.offsetX < x1 && e.offsetY >= y && e.offsetY < y + FRAME_H) return i;
  return -1;
}

function tooltipText(i) {
  const name = flame.names[flame.nodes.name[i]];
  const u = flame.unit;
  if (flame.layout.diff) {
    const b = flame.nodes.base[i], t = flame.nodes.target[i];
    return `${name}\nbase: ${fmt(b, u)} (${pct(b, flame.base_total)})\ntarget: ${fmt(t, u)} (${pct(t, flame.target_total)})\nchange of share: ${(100 * change(i)).toFixed(2)} points`;
  }
  const total = flame.nodes.total[i], self = flame.nodes.self[i], all = flame.nodes.total[0];
  return `${name}\ntotal: ${fmt(total, u)} (${pct(total, all)})\nself: ${fmt(self, u)} (${pct(self, all)})`;
}

function flameEvents() {
  const canvas = $("flame"), tip = $("tooltip");
  canvas.addEventListener("mousemove", (e) => {
    const i = flame ? hit(e) : -1;
    if (i < 0) { tip.hidden = true; return; }
    tip.textContent = tooltipText(i);
    tip.hidden = false;
    tip.style.left = Math.min(e.offsetX + 12, canvas.clientWidth - tip.offsetWidth) + "px";
    tip.style.top = (e.offsetY + 14) + "px";
  });
  canvas.addEventListener("mouseleave", () => { tip.hidden = true; });
  canvas.addEventListener("click", (e) => {
    const i = flame ? hit(e) : -1;
    if (i < 0) return;
    focusIndex = i;
    setState({ focus: nodePath(i) });
    drawFlame();
  });
}

// ---------- top table ----------

function drawTable() {
  const diff = flame.layout.diff;
  const head = $("top").tHead, body = $("top").tBodies[0];
  const u = flame.unit;
  let rows;
  let cols;
  if (diff) {
    cols = [["name", "function"], ["base", "base flat"], ["target", "target flat"], ["change", "flat share change"], ["tcum", "target cum"]];
    const bt = flame.base_total, tt = flame.target_total;
    rows = flame.top.map(([n, bf, tf, bc, tc]) => ({ name: flame.names[n], base: bf, target: tf, tcum: tc, bcum: bc, change: (tt ? tf / tt : 0) - (bt ? bf / bt : 0) }));
  } else {
    cols = [["name", "function"], ["flat", "flat"], ["flatp", "flat%"], ["cum", "cum"], ["cump", "cum%"]];
    const all = flame.nodes.total[0];
    rows = flame.top.map(([n, f, c]) => ({ name: flame.names[n], flat: f, cum: c, flatp: all ? f / all : 0, cump: all ? c / all : 0 }));
  }
  const key = tableSort.key in (rows[0] || {}) ? tableSort.key : (diff ? "change" : "flat");
  const sign = tableSort.desc ? -1 : 1;
  rows.sort((a, b) => {
    const va = key === "change" ? Math.abs(a[key]) : a[key], vb = key === "change" ? Math.abs(b[key]) : b[key];
    return (va < vb ? -1 : va > vb ? 1 : 0) * sign;
  });
  const tr = document.createElement("tr");
  for (const [k, label] of cols) {
    const th = document.createElement("th");
    th.textContent = label + (k === key ? (tableSort.desc ? " ▼" : " ▲") : "");
    th.dataset.key = k;
    th.addEventListener("click", () => { tableSort = { key: k, desc: tableSort.key === k ? !tableSort.desc : k !== "name" }; drawTable(); });
    tr.append(th);
  }
  head.replaceChildren(tr);
  const out = [];
  for (const r of rows.slice(0, 300)) {
    const row = document.createElement("tr");
    row.dataset.name = r.name;
    const cells = diff
      ? [r.name, fmt(r.base, u), fmt(r.target, u), `${r.change > 0 ? "+" : ""}${(100 * r.change).toFixed(2)} pts`, fmt(r.tcum, u)]
      : [r.name, fmt(r.flat, u), (100 * r.flatp).toFixed(2) + "%", fmt(r.cum, u), (100 * r.cump).toFixed(2) + "%"];
    cells.forEach((c, j) => { const td = document.createElement("td"); td.textContent = c; if (j === 0) td.title = r.name; if (diff && j === 3) td.className = r.change > 0 ? "up" : "down"; row.append(td); });
    if (state.search === "^" + escapeRe(r.name) + "$") row.classList.add("selected");
    out.push(row);
  }
  body.replaceChildren(...out);
}

function escapeRe(s) { return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"); }

// A row focuses its function: every frame of it is highlighted, and the graph zooms to the
// heaviest one.
function selectFunction(name) {
  let best = -1;
  const weightOf = (i) => flame.layout.diff ? flame.nodes.target[i] + flame.nodes.base[i] : flame.nodes.total[i];
  for (let i = 1; i < flame.nodes.name.length; i++) if (flame.names[flame.nodes.name[i]] === name && (best < 0 || weightOf(i) > weightOf(best))) best = i;
  focusIndex = best < 0 ? 0 : best;
  setState({ search: "^" + escapeRe(name) + "$", focus: best < 0 ? "" : nodePath(best) });
  $("search").value = state.search;
  drawFlame(); drawTable();
}

// ---------- the views ----------

function diffParams() {
  const p = selectionParams({ sample_type: state.sample_type, aggregation: aggregation() });
  if (state.base_labels !== undefined) p.base_labels = state.base_labels;
  if (state.base_from) p.base_from = state.base_from;
  if (state.base_to) p.base_to = state.base_to;
  return p;
}

function downloadUrl() {
  const agg = aggregation();
  if (state.view === "diff") return apiUrl("/api/0/profiles/diff", { ...diffParams(), sample_type: undefined });
  return apiUrl("/api/0/profiles/merge", selectionParams(agg === "mean" ? { aggregation: "mean" } : {}));
}

function pprofCommand() {
  return `go tool pprof '${location.origin}${downloadUrl()}'`;
}

async function loadFlame() {
  const diff = state.view === "diff";
  const params = diff ? diffParams() : selectionParams({ sample_type: state.sample_type, aggregation: aggregation() });
  // Performance marks say where the time to a drawn graph goes (bench/ui.py reads them).
  performance.mark("flame:request");
  const data = await api(diff ? "/api/0/flamegraph/diff" : "/api/0/flamegraph", params);
  performance.mark("flame:parsed");
  flame = data;
  flame.layout = layout(data, diff);
  performance.mark("flame:laid-out");
  const sel = $("sample_type");
  sel.replaceChildren(...data.sample_types.map((t) => new Option(`${t.type} (${t.unit})`, t.type)));
  sel.value = data.sample_type;
  $("agg").value = data.aggregation;
  $("agg-note").textContent = data.aggregation === "mean"
    ? `mean per profile: ${diff ? `base ${data.base_profiles}, target ${data.target_profiles}` : data.profiles} profiles; a snapshot summed over a range would overstate it`
    : `sum of ${diff ? `${data.base_profiles} base and ${data.target_profiles} target` : data.profiles} profiles`;
  if (data.folded) $("agg-note").textContent += ` · ${data.folded} small frames summed into "other"`;
  focusIndex = findPath(state.focus);
  $("command").textContent = pprofCommand();
  $("panes").hidden = false;
  drawFlame();
  performance.mark("flame:drawn");
  drawTable();
  performance.mark("flame:table");
  // The frame after the next has been painted: past style, layout and paint of graph and table.
  requestAnimationFrame(() => requestAnimationFrame(() => performance.mark("flame:painted")));
}

async function render() {
  syncForm();
  say("");
  document.body.dataset.ready = "";
  try {
    const selected = Boolean(state.service);
    $("services").hidden = selected;
    $("timeline-box").hidden = !selected;
    $("tools").hidden = !selected;
    $("panes").hidden = true;
    // A link that names its type draws at once, the graph asked first (the slowest answer); the
    // pickers fill in meanwhile.
    const graph = selected && state.type ? loadFlame() : null;
    graph?.catch(() => {});  // awaited below; this only keeps an early failure from counting as unhandled
    const services = loadServices();
    if (!selected) { await services; document.body.dataset.ready = "start"; return; }
    const choices = loadChoices();
    if (!state.type) await choices;
    if (!state.type) { say("No profiles of this service in this range."); document.body.dataset.ready = "empty"; return; }
    await Promise.all([services, choices, loadTimeline(), graph || loadFlame()]);
    document.body.dataset.ready = "flame";  // everything shown: what the browser tests wait for
  } catch (e) {
    say(e.status === 404 ? "Nothing found for this selection." : e.message);
    document.body.dataset.ready = "error";
  }
}

// ---------- wiring ----------

function init() {
  $("selection").addEventListener("submit", (e) => { e.preventDefault(); setState(readForm()); render(); });
  $("service").addEventListener("change", () => { setState(readForm()); render(); });
  $("type").addEventListener("change", () => { setState(readForm()); render(); });
  $("view").addEventListener("change", () => { $("diff-form").hidden = $("view").value !== "diff"; });
  $("range").addEventListener("change", () => {
    $("fromto").hidden = $("range").value !== "";
    if ($("range").value) { setState(readForm()); render(); }
  });
  for (const id of ["labels", "base_labels"]) {
    for (const event of ["input", "focus"]) $(id).addEventListener(event, () => fillLabelOptions($(id)));
  }
  $("sample_type").addEventListener("change", () => { setState({ sample_type: $("sample_type").value, focus: "" }); render(); });
  $("agg").addEventListener("change", () => { setState({ agg: $("agg").value }); render(); });
  $("search").addEventListener("input", () => { setState({ search: $("search").value }, false); if (flame) { drawFlame(); drawTable(); } });
  $("reset-zoom").addEventListener("click", () => { focusIndex = 0; setState({ focus: "" }); drawFlame(); });
  $("download").addEventListener("click", download);
  $("copy").addEventListener("click", () => copyText(pprofCommand()));
  $("token-save").addEventListener("click", () => { sessionStorage.setItem("profefe-token", $("token").value.trim()); $("token-form").hidden = true; render(); });
  window.addEventListener("popstate", () => { for (const k of Object.keys(state)) delete state[k]; Object.assign(state, Object.fromEntries(new URLSearchParams(location.search))); render(); });
  window.addEventListener("resize", () => { if (flame) drawFlame(); });
  $("top").tBodies[0].addEventListener("click", (e) => {
    const row = e.target.closest("tr");
    if (row && row.dataset.name !== undefined) selectFunction(row.dataset.name);
  });
  timelineDrag();
  flameEvents();
  render();
}

async function download() {
  try {
    const resp = await api(downloadUrl().split("?")[0], Object.fromEntries(new URLSearchParams(downloadUrl().split("?")[1])));
    const blob = await resp.blob();
    const disposition = resp.headers.get("Content-Disposition") || "";
    const name = (/filename="([^"]+)"/.exec(disposition) || [])[1] || "profile.pb.gz";
    const a = Object.assign(document.createElement("a"), { href: URL.createObjectURL(blob), download: name });
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  } catch (e) { say(e.message); }
}

async function copyText(text) {
  try { await navigator.clipboard.writeText(text); say("copied"); }
  catch {   // no clipboard API outside a secure context: select the text for a manual copy
    const range = document.createRange(); range.selectNodeContents($("command"));
    getSelection().removeAllRanges(); getSelection().addRange(range);
    say("select and copy the command beside the button");
  }
  setTimeout(() => say(""), 2000);
}

init();
