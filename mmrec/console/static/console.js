// mmrec console page. Every text that comes from a node, a camera or a file goes in with
// textContent (never innerHTML), so names with markup or bidirectional marks stay text.
"use strict";

const $ = (id) => document.getElementById(id);
let token = null;
let tokenHeader = "X-Mmrec-Token";
let lastState = null;
let slateDirty = false;
const selected = new Set();  // cameras the command goes to (empty: all)
let singleCamera = null;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    if (c instanceof Node) td.appendChild(c); else td.textContent = c === null || c === undefined ? "" : String(c);
    tr.appendChild(td);
  }
  return tr;
}

function hms(s) {
  if (s === null || s === undefined) return "--:--:--";
  s = Math.floor(s);
  const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, x = s % 60;
  return [h, m, x].map((v) => String(v).padStart(2, "0")).join(":");
}

function bytes(n) {
  if (n === null || n === undefined) return "-";
  const u = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return n.toFixed(i ? 1 : 0) + " " + u[i];
}

function num(v, digits) {
  return v === null || v === undefined ? "-" : Number(v).toFixed(digits);
}

async function post(path, body) {
  const r = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", [tokenHeader]: token || "" },
    body: JSON.stringify(body || {}),
  });
  let data = null;
  try { data = await r.json(); } catch (e) { data = { error: await r.text() }; }
  if (!r.ok) throw new Error(data && data.error ? data.error : "HTTP " + r.status);
  return data;
}

function flash(msg) {
  const conn = $("conn");
  conn.textContent = msg;
  conn.className = "bad";
}

function renderTop(st) {
  const ind = $("rec-indicator");
  const rec = st.recording;
  if (rec) {
    ind.textContent = "● REC";
    ind.className = "recording";
    $("take-name").textContent = rec.slate;
    $("elapsed").textContent = hms(rec.elapsed_s);
    $("timecode").textContent = rec.timecode;
  } else {
    ind.textContent = "STANDBY";
    ind.className = "standby";
    $("take-name").textContent = "next: " + "scene-" + st.slate.scene + "-take-" + st.slate.take;
    $("elapsed").textContent = "--:--:--";
    $("timecode").textContent = "--:--:--:--";
  }
  document.body.classList.toggle("is-recording", !!rec);
  $("btn-record").disabled = !!rec;
  $("btn-stop").disabled = !rec;
  if (!slateDirty) {
    $("scene").value = st.slate.scene;
    $("take").value = st.slate.take;
    if (document.activeElement !== $("note")) $("note").value = st.slate.note;
  }
  renderDisk(st.disk);
  $("preview-fps").textContent = st.preview_fps === null ? "" : st.preview_fps + " fps";
}

function duration(s) {
  if (s === null || s === undefined) return "-";
  s = Math.floor(s);
  if (s >= 3600) return Math.floor(s / 3600) + " h " + String(Math.floor(s / 60) % 60).padStart(2, "0") + " min";
  if (s >= 60) return Math.floor(s / 60) + " min " + String(s % 60).padStart(2, "0") + " s";
  return s + " s";
}

// The disk as the engine sees it: the take's folders as its recording checks them, or
// between takes the output folders at the rate the cameras would write (a forecast).
function renderDisk(d) {
  const box = $("disk");
  if (!d) return;
  $("disk-free").textContent = d.free_bytes === null ? "cannot be read" : bytes(d.free_bytes) + " free";
  $("disk-left-label").textContent = d.recording ? "left" : "left (est.)";
  $("disk-left").textContent = duration(d.seconds_left);
  const where = $("disk-where");
  const relays = d.folders.filter((f) => f.relay > 0);
  const into = d.folders.filter((f) => f.cameras.length > 0);
  let text = "";
  if (d.recording && into.some((f) => f.relay > 0)) {
    text = "→ relay " + into.filter((f) => f.relay > 0).map((f) => f.relay).join(", ");
  } else if (relays.length) {
    text = "+" + relays.length + (relays.length === 1 ? " relay" : " relays");
  }
  if (d.state !== "ok") text = (text ? text + " · " : "") + d.state;
  where.textContent = text;
  box.className = d.state === "ok" ? "" : "bad";
  box.title = d.folders.map((f) => (f.relay ? "relay " + f.relay : "out") + ": " + f.folder + "\n  " +
    (f.free_bytes === null ? "cannot be read" : bytes(f.free_bytes) + " free") + ", " + f.state +
    (f.seconds_left === null ? "" : ", " + duration(f.seconds_left) + " left") +
    (f.cameras.length ? "\n  writing: " + f.cameras.join(", ") : "")).join("\n") +
    (d.basis ? "\nbefore a take, assumed: " + d.basis : "");
}

function renderAlerts(st) {
  const list = $("alerts");
  list.replaceChildren();
  for (const a of st.alerts) {
    const li = el("li", null, "alert " + (a.active ? "active" : "cleared"));
    li.dataset.kind = a.kind;
    li.dataset.subject = a.subject;
    li.appendChild(el("span", a.kind, "kind"));
    li.appendChild(el("span", a.message + (a.times > 1 ? "  (×" + a.times + ")" : ""), "message"));
    li.appendChild(el("span", a.active ? "now" : "cleared", "when"));
    const b = el("button", "Acknowledge", "ack");
    b.type = "button";
    b.addEventListener("click", () => post("/api/alerts/ack", { id: a.id }).catch((e) => flash(e.message)));
    li.appendChild(b);
    list.appendChild(li);
  }
  $("alerts-bar").hidden = st.alerts.length === 0;
  const now = st.alerts.filter((a) => a.active).length;
  $("alerts-count").textContent = st.alerts.length + (st.alerts.length === 1 ? " alert" : " alerts") +
    (now ? " (" + now + " now)" : "");
}

function renderCameras(st) {
  const body = $("cameras").tBodies[0];
  body.replaceChildren();
  for (const c of st.cameras) {
    const state = el("span", null);
    state.appendChild(el("span", c.state, "state " + c.state));
    if (c.write_error) state.title = c.write_error;
    if (c.slow) {  // the ingest's own verdict (as record's table and the manifest say)
      const slow = el("span", "slow", "state slow");
      slow.title = c.slow;
      state.append(" ", slow);
    }
    const streaming = c.stream === "streaming";
    const fps = c.fps === null || !streaming ? "-" : num(c.fps, 1) + (c.nominal_fps ? " / " + c.nominal_fps : "");
    const clock = !c.clock_warm || c.clock_uncertainty_ms === null ? el("span", "-", "dim")
      : el("span", num(c.clock_uncertainty_ms, 1) + " ms");
    if (!c.clock_warm) clock.title = "the clock model is warming up";
    const ev = c.node_events.length ? c.node_events[c.node_events.length - 1].detail : (c.events_connected ? "" : "-");
    const view = el("button", "view", "view");
    view.type = "button";
    view.addEventListener("click", () => openSingle(c.name));
    const frames = c.take_frames === null ? String(c.frames) : c.take_frames + " in take";
    const nameCell = el("span", c.name, "name");
    nameCell.title = c.name + " (" + c.url + ")";
    const tr = row([
      nameCell, state, fps, streaming ? num(c.mbps, 1) : "-",
      c.latency_ms === null || !streaming ? "-" : num(c.latency_ms, 0) + " ms",
      frames, c.dropped, c.reconnects, c.down_s === null ? "" : hms(c.down_s),
      clock, c.write_error || c.last_error || "", ev, view,
    ]);
    tr.dataset.camera = c.name;
    tr.className = c.state;
    if (c.slow) tr.classList.add("slow");
    body.appendChild(tr);
  }
  // command targets: one checkbox per camera
  const box = $("cmd-targets");
  const names = st.cameras.map((c) => c.name);
  if (box.dataset.names !== JSON.stringify(names)) {
    box.dataset.names = JSON.stringify(names);
    box.replaceChildren(el("span", "to: ", "label"));
    for (const n of names) {
      const label = el("label", null, "target");
      const cb = document.createElement("input");
      cb.type = "checkbox";
      cb.checked = selected.size === 0 || selected.has(n);
      cb.dataset.camera = n;
      cb.addEventListener("change", () => {
        selected.clear();
        for (const x of box.querySelectorAll("input")) if (x.checked) selected.add(x.dataset.camera);
      });
      label.appendChild(cb);
      label.appendChild(el("span", n));
      box.appendChild(label);
    }
  }
}

function renderTakes(st) {
  const body = $("takes").tBodies[0];
  body.replaceChildren();
  for (const t of st.takes) {
    const bad = t.cameras.filter((c) => c.outcome !== "complete");
    const outcome = el("span", t.outcome || "?", t.ok ? "ok" : "problem");
    outcome.title = t.cameras.map((c) => c.name + ": " + (c.outcome || "?") + ", " + c.frames +
      " frames, " + c.dropped + " lost, " + c.gaps + " gaps" +
      (c.outcome_detail ? " (" + c.outcome_detail + ")" : "")).join("\n");
    // the take is judged by its worst camera: say how many were complete beside it
    const good = t.cameras.length - bad.length;
    const detail = el("span", bad.length
      ? " " + good + "/" + t.cameras.length + " complete; " +
        bad.map((c) => c.name + ": " + c.outcome).join(", ")
      : " " + t.cameras.length + " cameras");
    const cell = el("span");
    cell.append(outcome, detail);
    const folder = el("span", t.id);
    folder.title = t.dir;
    const tr = row([t.slate, t.timecode, t.duration_s.toFixed(1) + " s", cell, t.note, folder]);
    for (const td of tr.cells) if (!td.title) td.title = td.textContent;  // cut to fit: whole here
    tr.dataset.take = t.id;
    body.appendChild(tr);
  }
  const last = st.takes[0];
  const img = $("contact");
  if (last && last.contact_sheet) {
    if (img.dataset.src !== last.contact_sheet) {
      img.dataset.src = last.contact_sheet;
      img.src = last.contact_sheet;
    }
    img.hidden = false;
    $("contact-none").hidden = true;
  } else {
    img.hidden = true;
    $("contact-none").hidden = false;
    $("contact-none").textContent = last ? (last.contact_error || "Making the contact sheet…") : "No take yet.";
  }
}

function renderDevices(st) {
  const body = $("devices").tBodies[0];
  body.replaceChildren();
  for (const d of st.devices) {
    const addrs = el("ul", null, "addresses");
    for (const a of d.addresses) {
      const li = el("li", null, (a.in_use ? "in-use " : "") + (a.answering ? "answering" : "silent"));
      const host = a.address.includes(":") ? "[" + a.address + "]" : a.address;  // IPv6
      const addr = el("span", host + ":" + a.port, "addr");
      addr.title = host + ":" + a.port + " (" + a.kind + ", found by " + a.found_by.join(", ") +
        (a.in_use ? ", in use" : "") + (a.answering ? "" : ", not answering") + ")";
      li.appendChild(addr);
      const meta = el("span", null, "meta");
      meta.appendChild(el("span", a.kind, "kind"));
      if (a.found_by.join() !== d.found_by.join()) meta.appendChild(el("span", a.found_by.join(", "), "found"));
      if (a.in_use) meta.appendChild(el("span", "in use", "use"));
      li.appendChild(meta);
      addrs.appendChild(li);
    }
    const who = el("span", null, "who");
    who.appendChild(el("span", d.camera, "name"));
    if (d.name && d.name !== d.camera) who.appendChild(el("span", d.name, "node"));
    const what = el("span", [d.model, d.role].filter((x) => x).join(" · "), "model");
    for (const e of [who, what]) e.title = e.textContent;
    const tr = row([who, what, d.found_by.join(", "), addrs]);
    tr.dataset.camera = d.camera;
    body.appendChild(tr);
  }
}

function renderEvents(st) {
  const list = $("events");
  list.replaceChildren();
  for (const e of st.events.slice(0, 40)) {
    const li = el("li", null, "event " + e.kind);
    li.appendChild(el("span", hms(e.ago_s) + " ago", "ago"));
    li.appendChild(el("span", e.kind, "kind"));
    if (e.camera) li.appendChild(el("span", e.camera, "camera"));
    li.appendChild(el("span", e.detail, "detail"));
    list.appendChild(li);
  }
}

function renderAnswers(answers) {
  const body = $("answers").tBodies[0];
  body.replaceChildren();
  for (const a of answers) {
    const tr = row([a.node, a.error ? "failed" : a.status, a.elapsed_ms, a.error || a.body]);
    tr.dataset.node = a.node;
    tr.className = a.ok ? "ok" : "problem";
    body.appendChild(tr);
  }
}

function render(st) {
  lastState = st;
  renderTop(st);
  renderAlerts(st);
  renderCameras(st);
  renderTakes(st);
  renderDevices(st);
  renderEvents(st);
  if (st.commands.length) renderAnswers(st.commands);
  document.body.dataset.version = st.version;
}

function openSingle(name) {
  singleCamera = name;
  $("single-name").textContent = name;
  $("single-img").src = "/camera/" + encodeURIComponent(name) + ".mjpeg";
  $("single").hidden = false;
}

function closeSingle() {
  singleCamera = null;
  $("single-img").removeAttribute("src");  // closes the relay
  $("single").hidden = true;
}

function slateBody() {
  return { scene: $("scene").value.trim(), take: $("take").value.trim(), note: $("note").value };
}

function connect() {
  const es = new EventSource("/api/events");
  es.addEventListener("state", (ev) => {
    $("conn").textContent = "live";
    $("conn").className = "ok";
    render(JSON.parse(ev.data));
  });
  es.onerror = () => { $("conn").textContent = "reconnecting…"; $("conn").className = "bad"; };
}

async function main() {
  const r = await fetch("/api/session");
  if (r.ok) {
    const s = await r.json();
    token = s.token;
    tokenHeader = s.header;
  }
  for (const id of ["scene", "take", "note"]) $(id).addEventListener("input", () => { slateDirty = true; });
  $("btn-record").addEventListener("click", async () => {
    try { await post("/api/take/start", slateBody()); slateDirty = false; } catch (e) { flash(e.message); }
  });
  $("btn-stop").addEventListener("click", async () => {
    try { await post("/api/take/stop", {}); } catch (e) { flash(e.message); }
  });
  $("btn-ack-all").addEventListener("click", () => post("/api/alerts/ack", {}).catch((e) => flash(e.message)));
  $("btn-single-close").addEventListener("click", closeSingle);
  $("btn-send").addEventListener("click", async () => {
    const cams = selected.size ? Array.from(selected) : null;
    try {
      const res = await post("/api/command", {
        method: $("cmd-method").value, path: $("cmd-path").value, body: $("cmd-body").value,
        cameras: cams, deadline_s: Number($("cmd-deadline").value) || 3,
      });
      renderAnswers(res.answers);
    } catch (e) { flash(e.message); }
  });
  connect();
}

main();
