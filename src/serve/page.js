// peerscope's page: its script (served at page.js, beside the page).
"use strict";
const $ = (selector) => document.querySelector(selector);
const escapes = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const esc = (value) => String(value ?? "-").replace(/[&<>"']/g, (c) => escapes[c]);
const fixed = (value, digits) => (typeof value === "number" && isFinite(value) ? value.toFixed(digits) : "-");
const millis = (seconds) => (typeof seconds === "number" ? (seconds * 1000).toFixed(1) + " ms" : "-");
const when = (unix) => (unix ? new Date(unix * 1000).toLocaleTimeString() : "-");
const short = (root) => (root ? (root.length > 12 ? root.slice(0, 12) + "…" : root) : "-");
const yesNo = (ok, good, bad) => `<span class="${ok ? "ok" : "bad"}">${ok ? "● " + good : "○ " + bad}</span>`;
let interval = 2000;
let latest = null;
window.peerscope = { renders: 0, lastRenderMs: 0, lastStatus: null };

function list(target, pairs) {
  $(target + " dl").innerHTML = pairs.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join("");
}

function worstFirst(a, b) {
  if (a.up !== b.up) return a.up ? 1 : -1;
  const qa = a.quality ? a.quality.quality : -1, qb = b.quality ? b.quality.quality : -1;
  return qa - qb || a.label.localeCompare(b.label);
}

function peerRow(p) {
  const q = p.quality || {};
  const error = p.last_error ? `${esc(p.last_error.reason)}: ${esc(p.last_error.detail)}` : (p.identity_problem ? esc(p.identity_problem) : "-");
  const relationClass = p.relation === "diverge" ? "bad" : p.relation === "agree" ? "ok" : "warn";
  const observed = p.observer_rank === null || p.observer_rank === undefined ? "yes" : `yes, rank ${p.observer_rank}`;
  return `<tr data-peer="${esc(p.label)}" data-up="${p.up}" data-quality="${q.quality ?? ""}" data-success="${q.success_ratio ?? ""}" data-streak="${p.streak}" data-relation="${esc(p.relation)}">` +
    `<td>${yesNo(p.up, "up", "down")}</td><td title="${esc(p.url)}">${esc(p.label)}</td>` +
    `<td class="num">${fixed(q.quality, 3)}</td><td class="num">${fixed(q.success_ratio, 3)}</td>` +
    `<td class="num">${millis(q.latency_p95_seconds)}</td><td class="num">${fixed(q.freshness, 3)}</td><td class="num">${fixed(q.latency_score, 3)}</td>` +
    `<td class="${relationClass}">${esc(p.relation)}</td><td class="num">${esc(p.streak)}</td>` +
    `<td title="${esc(p.state_root)}">${esc(short(p.state_root))}</td><td>${observed}</td><td title="${error}">${error}</td></tr>`;
}

function renderPeers() {
  if (!latest) return;
  const started = performance.now();
  const needle = $("#filter").value.trim().toLowerCase();
  const peers = latest.peers.slice().sort(worstFirst).filter((p) => !needle ||
    [p.label, p.node_id, p.relation, p.up ? "up" : "down", p.last_error && p.last_error.reason, p.last_error && p.last_error.detail]
      .some((field) => field && String(field).toLowerCase().includes(needle)));
  $("#peers tbody").innerHTML = peers.map(peerRow).join("");
  const obs = latest.observation;
  const unobserved = obs && obs.not_observed ? `; ${obs.not_observed} members observed by others` : "";
  $("#peer-count").textContent = `${peers.length} of ${latest.peers.length} observed peers shown${unobserved}`;
  window.peerscope.lastRenderMs = performance.now() - started;
}

// The evidence of the confirmation on random members: votes, the statistic against its
// thresholds (SPEC §6).
function confirmation(x) {
  if (!x || x.state === "idle") return '<span class="muted">none (full mesh, or no divergence)</span>';
  const cls = x.state === "confirmed" ? "ok" : x.state === "confirming" ? "warn" : "muted";
  const votes = Object.entries(x.votes || {}).map(([root, n]) => `${esc(short(root))} ${esc(n)}`).join(", ");
  const hold = x.hold_remaining_seconds > 0 ? `, held ${fixed(x.hold_remaining_seconds, 0)} s` : "";
  return `<span class="${cls}">${esc(x.state)}</span> → ${esc(short(x.target_root))}: ` +
    `${esc(x.for_target)} of ${esc(x.sampled)} sampled of ${esc(x.voters)} voters (${esc(x.failed)} failed${x.discarded ? ", " + esc(x.discarded) + " duplicates" : ""}); ` +
    `statistic ${esc(x.statistic)} <span class="muted">(confirm at ${esc(x.confirm_at)}, refute at ${esc(x.refute_at)}, ≤ ${esc(x.max_draws)} draws${hold})</span>` +
    (votes ? ` <span class="muted">votes: ${votes}</span>` : "");
}

// Each discovery source (SPEC §10): its members, its last success and its last error.
function discovery(sources) {
  if (!sources || sources.length === 0) return '<span class="muted">none (peers listed)</span>';
  return sources.map((x) => `${esc(x.source)}: ${esc(x.members)} members` +
    (x.last_success_timestamp_seconds ? ` <span class="muted">(ok ${when(x.last_success_timestamp_seconds)})</span>` : "") +
    (x.last_error ? ` <span class="bad">last refresh failed: ${esc(x.last_error)}</span>` : "")).join("<br>");
}

function render(s) {
  latest = s;
  const n = s.node, f = s.federation, r = s.reconciliation, c = s.config, k = s.checkpoint, o = s.observation;
  $("#version").textContent = s.version;
  document.title = `peerscope — ${n.node_id || n.label}`;
  list("#node", [
    ["node", esc(n.node_id) + ` <span class="muted">${esc(n.label)}</span>`],
    ["status", yesNo(n.up, "up", "down")],
    ["state root", `<span title="${esc(n.state_root)}">${esc(n.state_root)}</span>`],
    ["height", esc(n.state_height)],
    ["last error", n.last_error ? `${esc(n.last_error.reason)}: ${esc(n.last_error.detail)}` : "-"],
    ["ready", yesNo(s.ready, "ready", "first cycle pending")],
    ["cycles", esc(s.cycles_completed)],
  ]);
  list("#federation", [
    ["peers live", `${f.peers_live} of ${f.peers_observed} observed (${f.peers_configured} configured)`],
    ["novelty", `${fixed(f.novelty, 3)} <span class="muted">(g_star σ ${fixed(f.g_star_stddev, 3)})</span>`],
    ["divergence ratio", `<span class="${f.divergence_ratio > 0 ? "bad" : "ok"}">${fixed(f.divergence_ratio, 3)}</span>`],
    ["roots", `${f.peers_agree} agree, ${f.peers_diverge} diverge, ${f.peers_unknown} unknown`],
    ["observation", o ? `${esc(o.name)}: K = ${o.observers_per_peer || "full mesh"}, ${o.observed} of ${o.members} members observed` : "-"],
    ["discovery", discovery(s.discovery)],
  ]);
  const d = r.decision || {};
  list("#reconciliation", [
    ["mode", `${esc(r.mode)} <span class="muted">(${esc(r.policy)}, threshold ${esc(r.threshold)})</span>`],
    ["decision", `${esc(d.kind)}${d.reason ? " — " + esc(d.reason) : ""}${d.target_root ? " → " + esc(short(d.target_root)) : ""}`],
    ["in flight", yesNo(!r.in_progress, "no", "yes")],
    ["cooldown", r.cooldown_remaining_seconds > 0 ? `${fixed(r.cooldown_remaining_seconds, 0)} s left` : "none"],
    ["backoff", r.backoff_remaining_seconds > 0 ? `${fixed(r.backoff_remaining_seconds, 0)} s left (${esc(r.consecutive_failures)} failures)` : "none"],
    ["requests", `${esc(r.requests_total)} total, ${esc(r.requests_last_hour)} in the last hour`],
    ["confirmation", confirmation(r.confirmation)],
  ]);
  $("#outcomes tbody").innerHTML = (r.history || []).slice(-5).reverse().map((h) =>
    `<tr><td>${when(h.at)}</td><td>${esc(h.outcome)}</td><td>${esc(short(h.target_root))}</td><td title="${esc(h.detail)}">${esc(h.detail)}</td></tr>`).join("") ||
    `<tr><td colspan="4" class="muted">no requests yet</td></tr>`;
  list("#operations", [
    ["config", `${esc(c.source || "flags and environment")} <span class="muted">hash ${esc(c.hash)}</span>`],
    ["loaded", when(c.loaded_at)],
    ["last reload", c.last_reload_successful ? '<span class="ok">● ok</span>' : `<span class="bad">○ refused: ${esc(c.last_error)}</span>`],
    ["reloads", `${esc(c.reloads_total)} (${esc(c.reload_failures_total)} refused)`],
    ["checkpoint", k.path ? esc(k.path) : "off"],
    ["restored", esc(k.restore)],
    ["writes", `${esc(k.writes_total)} (${esc(k.write_failures_total)} failed)${k.last_error ? ' <span class="bad">' + esc(k.last_error) + "</span>" : ""}`],
  ]);
  renderPeers();
  window.peerscope.renders += 1;
  window.peerscope.lastStatus = s;
}

function plot(id, points, key) {
  // Both figures are in [0, 1]: a fixed scale, so a flat line at 0 reads as 0.
  const line = $("#plot-" + id).querySelector("polyline");
  if (points.length < 2) { line.setAttribute("points", ""); return; }
  const t0 = points[0].at, span = Math.max(1e-9, points[points.length - 1].at - t0);
  const coords = points.map((p) => `${((p.at - t0) / span * 100).toFixed(2)},${(58 - Math.min(1, p[key]) * 56).toFixed(2)}`);
  line.setAttribute("points", coords.join(" "));
  const now = points[points.length - 1][key];
  $("#range-" + id).textContent = `(${points.length} cycles, now ${now.toFixed(3)}, scale 0–1)`;
}

async function refresh() {
  try {
    const [status, history] = await Promise.all([
      fetch("status", { cache: "no-store" }).then((r) => { if (!r.ok) throw new Error("status " + r.status); return r.json(); }),
      fetch("history", { cache: "no-store" }).then((r) => (r.ok ? r.json() : { points: [] })),
    ]);
    if (history.interval_seconds) interval = Math.min(10000, Math.max(1000, history.interval_seconds * 1000));
    render(status);
    plot("novelty", history.points, "novelty");
    plot("divergence", history.points, "divergence_ratio");
    $("#freshness").textContent = `updated ${new Date().toLocaleTimeString()}, every ${interval / 1000} s`;
    $("#freshness").className = "";
  } catch (error) {
    $("#freshness").textContent = `not updated: ${error.message} (showing ${latest ? "the last answer" : "nothing yet"})`;
    $("#freshness").className = "bad";
  }
  setTimeout(refresh, interval);
}

$("#filter").addEventListener("input", renderPeers);
refresh();
