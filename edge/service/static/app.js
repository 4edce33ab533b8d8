// The device page: polls api/status, shows each source's MJPEG preview (fetched with the bearer token and parsed
// here, so the token never goes into a URL), the status panel and the recent events. No framework, no build step.
"use strict";

const TOKEN_KEY = "edge-token";
const POLL_MS = 1000;
const RETRY_MS = 3000;
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem(TOKEN_KEY) || "";
let timer = null;
const streams = new Map();  // source id -> {controller, img, blob, url, retryAt}
const thumbs = new Map();   // "source/seq" -> object URL of the frame shown when the event arrived

function auth() {
  return token ? { Authorization: "Bearer " + token } : {};
}

async function poll() {
  clearTimeout(timer);
  if (document.hidden) return;  // nobody looks: no polling, no streams
  try {
    const r = await fetch("api/status", { headers: auth(), cache: "no-store" });
    if (r.status === 401) return askToken(token ? "That token was refused." : "");
    if (!r.ok) throw new Error("HTTP " + r.status);
    render(await r.json());
  } catch (e) {
    banner("bad", "Cannot reach the device (" + e.message + ")");
    for (const card of document.querySelectorAll(".source")) card.classList.add("down");
  }
  timer = setTimeout(poll, POLL_MS);
}

function askToken(message) {
  stopStreams();
  banner("wait", "Locked");
  $("main").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("token").focus();
}

function banner(kind, text) {
  $("banner").className = kind;
  $("state").textContent = text;
}

function fmt(value, unit, digits = 1) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits) + (unit ? " " + unit : "");
}

function duration(s) {
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return (h ? h + " h " : "") + (h || m ? m + " min " : "") + Math.floor(s % 60) + " s";
}

function render(s) {
  $("login").hidden = true;
  $("main").hidden = false;
  const down = s.sources.filter((src) => !src.ok).map((src) => src.id);
  banner(s.ready ? "ok" : "bad", s.ready ? "Running" : "Not ready: " + s.reasons.join("; "));
  renderSources(s);
  const lat = (stage) => s.latency_ms[stage] || {};
  const sum = (key) => s.sources.reduce((n, src) => n + (src[key] || 0), 0);
  const fpsIn = s.sources.some((src) => src.fps_in !== null) ? sum("fps_in") : null;
  const m = s.model;
  const rows = [
    ["model", "Model", [m.id, m.family, m.precision, m.backend].filter(Boolean).join(" · ") || "–"],
    ["fps_in", "FPS in", fmt(fpsIn, "", 1)],
    ["fps_out", "FPS out", fmt(s.fps_out, "", 1)],
    ["inference", "Inference p50 / p99", fmt(lat("inference").p50, "") + " / " + fmt(lat("inference").p99, "ms")],
    ["latency", "Capture → result p50 / p99",
      fmt(lat("capture_to_result").p50, "") + " / " + fmt(lat("capture_to_result").p99, "ms")],
    ["dropped", "Frames dropped", String(sum("dropped"))],
    ["reconnects", "Reconnects", String(sum("reconnects"))],
    ["sink_failures", "Sink failures", String(s.sink_failures)],
    ["uptime", "Uptime", duration(s.uptime_s)],
    ["cpu_temp", "CPU temperature", fmt(s.system.cpu_temp_c, "°C")],
    ["rss", "Memory (RSS)", fmt(s.system.rss_mb, "MB")],
    ["down", "Sources down", down.length ? down.join(", ") : "none"],
  ];
  $("status").replaceChildren(...rows.flatMap(([key, label, value]) => {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = label;
    dd.textContent = value;
    dd.dataset.key = key;
    return [dt, dd];
  }));
  renderEvents(s.events);
}

function renderSources(s) {
  const box = $("sources");
  for (const src of s.sources) {
    let card = box.querySelector(`[data-source="${CSS.escape(src.id)}"]`);
    if (!card) {
      card = $("source-card").content.firstElementChild.cloneNode(true);
      card.dataset.source = src.id;
      card.querySelector(".name").textContent = src.id;
      card.setAttribute("aria-label", "source " + src.id);
      box.append(card);
    }
    card.classList.toggle("down", !src.ok);
    card.querySelector(".badge").textContent = src.ok ? "live" : src.state;
    const why = s.reasons.filter((r) => r.startsWith("source " + src.id + ":"));
    card.querySelector(".reason").textContent = why.join("; ") || (src.error || "");
    card.querySelector("tbody").replaceChildren(...src.detections.map((d) => {
      const tr = document.createElement("tr");
      for (const text of [d.name, d.score.toFixed(2), d.track_id ?? ""]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      return tr;
    }));
    const counts = src.counts ? Object.entries(src.counts).map(([k, v]) => k + ": " + JSON.stringify(v)) : [];
    card.querySelector(".counts").textContent = counts.join(" · ");
    const st = streams.get(src.id);
    if (!st || (!st.controller && Date.now() >= st.retryAt)) watch(src.id, card.querySelector("img.live"));
  }
}

function renderEvents(events) {
  const list = $("events"), keep = new Set();
  const items = events.map((e) => {
    const key = e.source + "/" + e.seq;
    keep.add(key);
    if (!thumbs.has(key)) {
      const st = streams.get(e.source);
      thumbs.set(key, st && st.blob ? URL.createObjectURL(st.blob) : "");
    }
    const li = document.createElement("li"), img = document.createElement("img"), p = document.createElement("p");
    img.alt = "frame " + e.seq + " of " + e.source;
    if (thumbs.get(key)) img.src = thumbs.get(key);
    const names = e.detections.map((d) => d.name + (d.track_id !== undefined ? " #" + d.track_id : ""));
    const file = e.file ? " " + e.file.split("/").pop() : "";  // schema_version 3: file and folder sources
    p.textContent = new Date(e.inferred_at * 1000).toLocaleTimeString() + " " + e.source + file + " #" + e.seq + ": " +
      (names.join(", ") || "nothing");
    li.append(img, p);
    return li;
  });
  for (const [key, url] of thumbs) {
    if (!keep.has(key)) {
      if (url) URL.revokeObjectURL(url);
      thumbs.delete(key);
    }
  }
  list.replaceChildren(...items);
}

// multipart/x-mixed-replace over fetch(): each part is "--frame", headers with Content-Length, a blank line, JPEG.
async function watch(id, img) {
  const st = { controller: new AbortController(), img, blob: null, url: "", retryAt: 0 };
  streams.set(id, st);
  try {
    const r = await fetch("stream.mjpg?source=" + encodeURIComponent(id), { headers: auth(), signal: st.controller.signal });
    if (!r.ok) throw new Error("HTTP " + r.status);
    const reader = r.body.getReader();
    let buf = new Uint8Array(0);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf = concat(buf, value);
      for (;;) {
        const end = indexOf(buf, [13, 10, 13, 10]);
        if (end < 0) break;
        const length = /content-length:\s*(\d+)/i.exec(new TextDecoder().decode(buf.subarray(0, end)));
        if (!length) throw new Error("bad part");
        const start = end + 4, stop = start + Number(length[1]);
        if (buf.length < stop + 2) break;
        show(st, new Blob([buf.slice(start, stop)], { type: "image/jpeg" }));
        buf = buf.slice(stop + 2);
      }
    }
  } catch (e) {
    if (e.name === "AbortError") return;
  }
  st.controller = null;
  st.retryAt = Date.now() + RETRY_MS;
}

function show(st, blob) {
  const old = st.url;
  st.blob = blob;
  st.url = URL.createObjectURL(blob);
  st.img.src = st.url;
  if (old) URL.revokeObjectURL(old);
}

function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function indexOf(buf, pattern) {
  outer: for (let i = 0; i <= buf.length - pattern.length; i++) {
    for (let j = 0; j < pattern.length; j++) if (buf[i + j] !== pattern[j]) continue outer;
    return i;
  }
  return -1;
}

function stopStreams() {
  for (const st of streams.values()) if (st.controller) st.controller.abort();
  streams.clear();
}

$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  token = $("token").value;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token").value = "";
  poll();
});
document.addEventListener("visibilitychange", () => {
  if (document.hidden) stopStreams();
  poll();
});
poll();
