// The studio's pages: library, compose, duet, record and train. Each talks to the server's
// JSON API (synth/studio/app.py); sound is made here, by the Web Audio piano or a WAV.
import {getJSON, postJSON, postBytes, q} from "./api.js";
import {Keyboard} from "./keyboard.js";
import {clock, eventName, midiName, LOWEST, HIGHEST} from "./notes.js";
import {piano} from "./piano.js";
import {Player} from "./player.js";
import {Roll} from "./roll.js";
import {DuetSocket} from "./socket.js";

const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));

// --- messages --------------------------------------------------------------------------------
let toastTimer = null;
function toast(text, ok = false) {
  const t = $("toast");
  t.textContent = text;
  t.className = ok ? "ok" : "";
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, ok ? 4000 : 9000);
}
window.addEventListener("studio-error", (e) => toast(e.detail));
window.addEventListener("unhandledrejection", (e) => toast(e.reason?.message || String(e.reason)));

// --- pages -----------------------------------------------------------------------------------
const PAGES = ["library", "compose", "duet", "record", "train"];
const opened = new Set();
function route() {
  const page = PAGES.includes(location.hash.slice(1)) ? location.hash.slice(1) : "library";
  for (const p of PAGES) $(p).hidden = p !== page;
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("on", a.dataset.page === page));
  if (!opened.has(page)) { opened.add(page); ({library: loadLibrary, train: refreshTrain}[page])?.(); }
  document.body.dataset.page = page;
}
window.addEventListener("hashchange", route);

let styleNames = null;
async function loadStyles() {
  styleNames = (await getJSON("/api/styles")).styles;
  document.querySelectorAll(".style-select").forEach((select) => {
    select.innerHTML = styleNames.map((s) => `<option value="${esc(s.name)}">${esc(s.name)}${s.packaged ? " (packaged)" : ""}</option>`).join("");
  });
  $("style-list").innerHTML = styleNames.map((s) =>
    `<li><span>${esc(s.name)}</span><span class="muted">${s.packaged ? "shipped with synth" : `${esc(s.folder)}/`}</span></li>`).join("");
}

// The compose form's starting values and the tempo of a song that gives none: the server's,
// read from the same homes as the command line's defaults (GET /api/compose). Awaited before
// any page is shown, so nothing typed into the form is overwritten when they arrive.
const defaults = await getJSON("/api/compose");

// --- library ---------------------------------------------------------------------------------
let songs = [], section = "", selected = null;
const songRoll = new Roll($("song-roll"));
const songPlayer = new Player({button: $("song-play"), roll: songRoll, time: $("song-time"),
  length: $("song-length"), bar: $("song-progress")});

async function loadLibrary(select = null) {
  try {
    songs = (await getJSON("/api/songs")).songs;
  } catch (e) { toast(e.message); return; }
  showSongs();
  document.body.dataset.readyMs ??= Math.round(performance.now());  // from the navigation
  const wanted = select || selected?.id;
  const found = songs.find((s) => s.id === wanted || s.song === wanted);
  if (found && select) chooseSong(found);
}

function showSongs() {
  const words = $("filter").value.toLowerCase().split(/\s+/).filter(Boolean);
  const shown = songs.filter((s) => (!section || s.section === section) &&
    words.every((w) => `${s.title} ${s.source} ${s.id}`.toLowerCase().includes(w)));
  $("songs").innerHTML = shown.length ? shown.map((s) => `
    <div class="song${selected && selected.id === s.id ? " on" : ""}" data-id="${esc(s.id)}">
      <div class="title">${esc(s.title)}</div>
      <div class="dur">${clock(s.seconds)}</div>
      <div class="meta"><span class="badge ${s.section}">${s.section === "out" ? "composed" : s.section}</span>
        <span>${s.error ? `<span class="badge bad">unreadable</span>` : s.events ? `${s.events} events` : "audio"}</span>
        <span>${esc(s.source).slice(0, 48)}</span></div>
    </div>`).join("") : `<p class="muted pad">No songs here yet: compose one, record a take or drop MIDI files on this page.</p>`;
  $("songs").dataset.count = shown.length;
}

$("songs").addEventListener("click", (e) => {
  const row = e.target.closest(".song");
  if (row) chooseSong(songs.find((s) => s.id === row.dataset.id));
});
$("filter").addEventListener("input", showSongs);
$("sections").addEventListener("click", (e) => {
  if (!e.target.dataset || e.target.tagName !== "BUTTON") return;
  section = e.target.dataset.section;
  $("sections").querySelectorAll("button").forEach((b) => b.classList.toggle("on", b === e.target));
  showSongs();
});

async function chooseSong(item) {
  if (!item) return;
  selected = item;
  showSongs();
  const detail = $("detail");
  detail.querySelector(".empty").hidden = true;
  detail.querySelector(".full").hidden = false;
  $("song-title").textContent = item.title;
  const bpm = item.bpm || defaults.bpm;
  $("song-meta").textContent = [item.source, item.events ? `${item.events} events` : "",
    item.song ? `${bpm} bpm` : "", clock(item.seconds)].filter(Boolean).join(" · ");
  $("song-path").textContent = [item.song, item.wav, item.take].filter(Boolean).filter((v, i, a) => a.indexOf(v) === i).join("  ·  ");
  const main = item.song || item.wav;
  const link = (id, fmt, path = main) => {
    $(id).href = `/api/download?path=${q(path)}&format=${fmt}`;
    $(id).hidden = !path;
  };
  link("dl-wav", "wav", item.wav || main);
  link("dl-mid", "mid", item.midi || item.song);
  link("dl-txt", "txt", item.song);
  link("dl-take", "mid", item.take);
  $("dl-take").hidden = !item.take || item.take === item.song;
  songPlayer.load(`/api/audio?path=${q(item.wav || main)}`, bpm, item.seconds);
  if (item.song && !item.error) {
    try {
      const song = await getJSON(`/api/song?path=${q(item.song)}`);
      if (selected === item) songRoll.show(song.events);
    } catch (e) { toast(e.message); songRoll.show([]); }
  } else {
    songRoll.show([]);
    if (item.error) toast(item.error);
  }
}

// Import: MIDI files dropped anywhere on the library page.
let dragDepth = 0;
window.addEventListener("dragenter", (e) => {
  if (document.body.dataset.page !== "library" || !e.dataTransfer?.types.includes("Files")) return;
  dragDepth++;
  $("dropzone").hidden = false;
});
window.addEventListener("dragleave", () => { if (--dragDepth <= 0) { dragDepth = 0; $("dropzone").hidden = true; } });
window.addEventListener("dragover", (e) => e.preventDefault());
window.addEventListener("drop", async (e) => {
  e.preventDefault();
  dragDepth = 0;
  $("dropzone").hidden = true;
  if (document.body.dataset.page !== "library") return;
  await importFiles([...e.dataTransfer.files]);
});

export async function importFiles(files) {
  const lines = [];
  let last = null;
  for (const file of files) {
    try {
      const r = await postBytes(`/api/import?name=${q(file.name)}`, await file.arrayBuffer());
      if (r.skipped) lines.push(`${file.name} → ${r.saved}: already in the dataset`);
      else lines.push(`${file.name} → ${r.saved}: ${r.events} events (${r.notes} notes kept, ${r.folded} folded, ${r.dropped} dropped, ${r.quantised} quantised, ${r.shift >= 0 ? "+" : ""}${r.shift} oct)`);
      last = r.saved;
    } catch (err) { lines.push(err.message); }
  }
  toast(lines.join("\n"), last !== null && lines.length === files.length && !lines.some((l) => !l.includes("→")));
  await loadLibrary(last);
}
window.studioImport = importFiles;  // for the browser tests, which cannot drag files

// --- compose ---------------------------------------------------------------------------------
const composedRoll = new Roll($("composed-roll"));
const composedPlayer = new Player({button: $("composed-play"), roll: composedRoll,
  time: $("composed-time"), length: $("composed-length"), bar: $("composed-progress")});
const form = $("compose-form");
for (const input of form.querySelectorAll("input[type=number], input[type=range]")) {
  if (defaults[input.name] !== null && defaults[input.name] !== undefined) {
    input.value = defaults[input.name];
  }
}
form.effects.checked = defaults.effects;
form.even.checked = defaults.even;
form.querySelectorAll("input[type=range]").forEach((input) => {
  const show = () => {
    const v = form.querySelector(`[data-for=${input.name}]`);
    v.textContent = input.name === "cutoff" ? input.value : Number(input.value).toFixed(2);
  };
  input.addEventListener("input", show);
  show();
});
const primerKeys = new Keyboard($("primer-keys"), {
  onDown: (m, v) => {
    piano.start().then(() => piano.down(m, v));
    if (m >= LOWEST && m <= HIGHEST) $("primer").value = `${$("primer").value} ${midiName(m)}`.trim();
  },
  onUp: (m) => piano.up(m),
});
$("primer-clear").addEventListener("click", () => { $("primer").value = ""; });

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const began = performance.now();
  const data = Object.fromEntries(new FormData(form));
  const number = (k) => data[k] === "" || data[k] === undefined ? null : Number(data[k]);
  const request = {
    style: data.style, notes: number("notes"), bpm: number("bpm"), seed: number("seed"),
    temperature: number("temperature"), top_p: number("top_p"), room_size: number("room_size"),
    wet: number("wet"), cutoff: number("cutoff"), primer: data.primer || "",
    effects: form.effects.checked, even: form.even.checked,
  };
  $("compose-go").disabled = true;
  $("compose-go").textContent = "Composing…";
  try {
    const r = await postJSON("/api/compose", request);
    const box = $("compose-result");
    box.querySelector(".empty").hidden = true;
    box.querySelector(".full").hidden = false;
    $("composed-title").textContent = r.title;
    const beats = r.events.reduce((s, [, qq]) => s + qq, 0) / 4;
    const seconds = beats * 60 / r.bpm;
    $("composed-meta").textContent = `${r.events.length} events${r.primer ? ` after a ${r.primer}-event primer` : ""} · ${r.bpm} bpm · ${clock(seconds)} · ${request.style} · saved as ${r.wav}`;
    composedRoll.show(r.events, r.primer);
    for (const [id, fmt, path] of [["cdl-wav", "wav", r.wav], ["cdl-mid", "mid", r.midi], ["cdl-txt", "txt", r.song]]) {
      $(id).href = `/api/download?path=${q(path)}&format=${fmt}`;
    }
    composedPlayer.load(`/api/audio?path=${q(r.wav)}`, r.bpm, seconds);
    composedPlayer.onPlaying = () => {
      const ms = Math.round(performance.now() - began);
      $("composed-speed").textContent = `Composed, rendered and playing ${ms} ms after the click.`;
      document.body.dataset.composeMs = ms;
    };
    composedPlayer.play();
    opened.delete("library");  // the library shows it next time
  } catch (err) {
    toast(err.message);
  } finally {
    $("compose-go").disabled = false;
    $("compose-go").textContent = "Compose";
  }
});

// --- duet ------------------------------------------------------------------------------------
let duet = null, answerStart = 0, answerVoices = [], lastUp = 0, pending = null;
const duetKeys = new Keyboard($("duet-keys"), {
  onDown: (m, v) => {
    piano.down(m, v);
    if (duet) duet.send({type: "down", note: m, velocity: v});
  },
  onUp: (m) => {
    piano.up(m);
    lastUp = performance.now();
    if (duet) duet.send({type: "up", note: m});
  },
});
duetKeys.enabled = false;

function duetStatus(text, live = false) {
  $("duet-status").textContent = text;
  $("duet-status").className = `status ${live ? "live" : "muted"}`;
}

let answerNames = [];
function schedule(notes) {
  answerNames.push(...notes.map(([, , pitch]) => midiName(pitch)));
  const shown = $("duet-log").querySelector("li:first-child .answer");
  if (shown && !pending) shown.textContent = answerNames.join(" ");
  for (const [on, off, pitch, velocity] of notes) {
    const when = answerStart + on;
    answerVoices.push(piano.note(pitch, velocity, when, off - on));
    const lead = (when - piano.now) * 1000;
    setTimeout(() => duetKeys.mark(pitch, "answer", true), Math.max(lead, 0));
    setTimeout(() => duetKeys.mark(pitch, "answer", false), Math.max(lead + (off - on) * 1000, 0));
  }
}

function logEntry(html) {
  const log = $("duet-log");
  if (log.querySelector(".placeholder")) log.innerHTML = "";
  const li = document.createElement("li");
  li.innerHTML = html;
  log.prepend(li);
  return li;
}

function onDuet(message) {
  if (message.type === "ready") {
    duetStatus("Listening: play a phrase, then pause.", true);
  } else if (message.type === "answer") {
    answerStart = piano.now + message.delay;
    answerVoices = [];
    answerNames = [];
    pending = {arrived: performance.now(), lastUp};
    schedule(message.notes);
  } else if (message.type === "more") {
    schedule(message.notes);
  } else if (message.type === "cut") {
    answerVoices.forEach((v) => piano.release(v, 0, 0.03));
    answerVoices = [];
    duetKeys.keys.forEach((_, m) => duetKeys.mark(m, "answer", false));
  } else if (message.type === "answered") {
    // the answer's arrival here, after the last key up and the pause that ended the phrase
    const wait = pending ? Math.max(Math.round(pending.arrived - pending.lastUp - message.gap * 1000), 0) : 0;
    pending = null;
    duetStatus(`Answering at ${message.bpm} bpm (tempo from the ${message.bpm_from}).`, true);
    const li = logEntry(`<span class="who you">You</span><span class="notes">${esc(message.phrase.join(" "))}</span>
      <span class="lat">answered in <b class="latency">${message.latency_ms.toFixed(1)} ms</b><br>on this page ${wait} ms after your pause</span>
      <span class="who synth">synth</span><span class="notes answer playing">${esc(answerNames.join(" "))}</span><span></span>`);
    li.dataset.latency = message.latency_ms;
    $("duet-log").dataset.answers = $("duet-log").children.length;
  } else if (message.type === "finished") {
    const li = $("duet-log").firstElementChild;
    if (li) li.querySelector(".answer").classList.remove("playing");
    if (li) li.querySelector(".answer").textContent = message.answer.slice(0, message.played || message.answer.length).join(" ") + (message.interrupted ? "  (cut short)" : message.overlapped ? "  (finished its bar)" : "");
    duetStatus("Listening: play a phrase, then pause.", true);
  } else if (message.type === "error") {
    toast(message.error);
  }
}

$("duet-start").addEventListener("click", async () => {
  if (duet) { stopDuet(); return; }
  try {
    await piano.start();
    duet = new DuetSocket(onDuet, () => { if (duet) { toast("the duet connection closed"); stopDuet(); } });
    await duet.opened;
    const number = (id) => $(id).value === "" ? null : Number($(id).value);
    duet.send({type: "start", style: $("duet-style").value, gap: number("duet-gap"),
      temperature: number("duet-temperature"), overlap: $("duet-overlap").checked});
    duetKeys.enabled = true;
    const midi = await duetKeys.listenMidi();
    $("duet-start").textContent = "Stop";
    duetStatus(midi.length ? `Connected; MIDI: ${midi.join(", ")}` : "Connected.", true);
  } catch (err) { toast(err.message); stopDuet(); }
});

function stopDuet() {
  const d = duet;
  duet = null;
  duetKeys.releaseAll();
  duetKeys.enabled = false;
  if (d) d.close();
  $("duet-start").textContent = "Start";
  duetStatus("Stopped. Press Start to play again.");
}

// --- record ----------------------------------------------------------------------------------
let take = null;
const recRoll = new Roll($("rec-roll"));
const recKeys = new Keyboard($("rec-keys"), {
  onDown: (m, v) => {
    piano.start().then(() => piano.down(m, v));
    if (takeHears()) { take.messages.push([takeTime(), m, v]); take.notes.push(midiName(m)); showTake(); }
  },
  onUp: (m) => {
    piano.up(m);
    if (takeHears()) take.messages.push([takeTime(), m, 0]);
  },
});

// The take listens from the count-in's first click: a pickup played during it is kept, as
// `synth record` keeps it. Times go to the server in seconds from beat 1 (negative before it).
function takeHears() { return take?.recording && performance.now() >= take.t0; }
function takeTime() { return (performance.now() - take.beat1) / 1000; }

function showTake() {
  const recent = take.notes.slice(-24).join(" ");
  const when = performance.now() < take.beat1 ? `Count-in: ${take.left}` : "Recording ●";
  $("rec-status").textContent = `${when} ${take.notes.length} notes   ${recent}`;
}

$("rec-go").addEventListener("click", async () => {
  if (take) { await stopTake(); return; }
  const bpm = Number($("rec-bpm").value) || 120, count = Math.max(0, Number($("rec-count").value) || 0);
  await piano.start();
  const beat = 60 / bpm, t = piano.now + 0.1;
  const t0 = performance.now() + 100;  // the first click, 0.1 s from now (as scheduled below)
  take = {recording: true, messages: [], notes: [], bpm, count, t0, beat1: t0 + count * beat * 1000, left: count};
  $("rec-go").textContent = "Stop";
  $("rec-status").className = "status rec";
  $("rec-result").hidden = true;
  for (let i = 0; i < count; i++) piano.click(t + i * beat, i === 0);
  const mine = take;
  for (let i = 0; i < count; i++) {
    setTimeout(() => {
      if (take !== mine) return;
      take.left = count - i;
      if (take.notes.length) showTake(); else $("rec-status").textContent = `Count-in: ${count - i}   (a pickup played now is kept)`;
    }, (0.1 + i * beat) * 1000);
  }
  document.body.dataset.recording = "1";
  setTimeout(() => {
    if (take !== mine) return;
    if (take.notes.length) showTake(); else $("rec-status").textContent = "Recording ● play now; Stop saves the take.";
    document.body.dataset.started = "1";
  }, (0.1 + count * beat) * 1000);
});

async function stopTake() {
  const t = take;
  take = null;
  delete document.body.dataset.recording;
  delete document.body.dataset.started;
  recKeys.releaseAll();
  $("rec-go").textContent = "Record";
  $("rec-status").className = "status muted";
  if (!t.messages.length) { $("rec-status").textContent = "Nothing was played: nothing saved."; return; }
  const seconds = (performance.now() - t.beat1) / 1000;
  try {
    const r = await postJSON("/api/record", {name: $("rec-name").value, bpm: t.bpm, count_in: t.count, seconds, messages: t.messages});
    const pickup = r.pickup ? ` — the song starts ${r.pickup} beat${r.pickup === 1 ? "" : "s"} before beat 1 (a pickup played during the count-in)` : "";
    $("rec-status").textContent = `Saved ${r.song || "no song (every note was outside C3–B4)"} and ${r.take}` + (r.outside ? ` — ${r.outside} notes outside C3–B4 left out of the song` : "") + pickup;
    $("rec-warning").hidden = !r.warning;
    $("rec-warning").textContent = r.warning ? `Warning: ${r.warning} (the raw take keeps them).` : "";
    $("rec-result").hidden = false;
    $("rec-saved").textContent = `${r.song}: ${r.events.length} events — ${r.events.map(eventName).join(" ")}`.slice(0, 300);
    recRoll.show(r.events);
    opened.delete("library");
  } catch (err) { toast(err.message); $("rec-status").textContent = "Not saved."; }
}

// --- train -----------------------------------------------------------------------------------
let trainTimer = null, trainSeen = 0;
async function refreshTrain() {
  let s;
  try { s = await getJSON(`/api/train?since=${trainSeen}`); } catch (e) { toast(e.message); return; }
  const select = $("train-dataset");
  if (!select.options.length) select.innerHTML = s.folders.map((f) => `<option>${esc(f)}</option>`).join("");
  if (trainSeen === 0 && s.lines.length) $("train-log").textContent = "";
  if (s.lines.length) { $("train-log").textContent += s.lines.join("\n") + "\n"; $("train-log").scrollTop = 1e9; }
  trainSeen = s.count;
  const words = {idle: "No training yet", running: `Training ${s.target}/…`, done: `Trained ${s.target}/: in use from now on`,
    failed: `Training ${s.target}/ failed`, stopped: `Training ${s.target}/ stopped`};
  $("train-state").textContent = words[s.state];
  $("train-clock").textContent = s.seconds ? clock(s.seconds) : "";
  $("train-progress").style.width = s.state === "done" ? "100%" : s.epoch ? `${100 * s.epoch[0] / s.epoch[1]}%` : "0";
  $("train-go").disabled = s.state === "running";
  $("train-stop").disabled = s.state !== "running";
  document.body.dataset.train = s.state;
  clearTimeout(trainTimer);
  if (s.state === "running") trainTimer = setTimeout(refreshTrain, 1000);
  else if (s.state === "done") loadStyles();
}

$("train-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const data = Object.fromEntries(new FormData(e.target));
  try {
    await postJSON("/api/train", {style: data.style.trim(), dataset: data.dataset, source: data.source.trim(), epochs: Number(data.epochs) || 40,
      max_minutes: data.max_minutes === "" ? null : Number(data.max_minutes)});
    trainSeen = 0;
    $("train-log").textContent = "";
    refreshTrain();
  } catch (err) { toast(err.message); }
});
$("train-stop").addEventListener("click", async () => {
  try { await postJSON("/api/train/stop", {}); } catch (err) { toast(err.message); }
  refreshTrain();
});

route();
loadStyles().catch((e) => toast(e.message));
