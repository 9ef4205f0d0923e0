// The on-screen two-octave keyboard (C3-B4), played by the mouse, a touch screen, the
// computer keys (the layout of `synth live --input keys`) and any Web MIDI keyboard.
import {LOWEST, HIGHEST, isBlack, midiName} from "./notes.js";

// The tracker layout, as synth/play/inputs.py KEY_ROWS: white keys on a letter row, black above.
export const KEY_ROWS = {"zsxdcvgbhnjm": 48, "q2w3er5t6y7u": 60};
export const KEY_PITCHES = Object.fromEntries(Object.entries(KEY_ROWS).flatMap(
  ([row, base]) => [...row].map((key, i) => [key, base + i])));
const KEY_OF = Object.fromEntries(Object.entries(KEY_PITCHES).map(([k, m]) => [m, k]));

let midiAccess = null;

export class Keyboard {
  // onDown(midi, velocity) and onUp(midi) hear every key, whatever played it.
  constructor(element, {onDown, onUp}) {
    this.element = element;
    this.onDown = onDown;
    this.onUp = onUp;
    this.down = new Set();
    this.enabled = true;
    this.keys = new Map();
    this.build();
    this.pointers = new Map();
    this.listenKeys();
  }

  build() {
    this.element.classList.add("keyboard");
    const whites = [];
    for (let m = LOWEST; m <= HIGHEST; m++) if (!isBlack(m)) whites.push(m);
    const width = 100 / whites.length;
    for (let m = LOWEST; m <= HIGHEST; m++) {
      const key = document.createElement("div");
      key.className = isBlack(m) ? "key black" : "key white";
      key.dataset.midi = m;
      const index = whites.filter((w) => w < m).length;
      key.style.left = isBlack(m) ? `${index * width - width * 0.3}%` : `${index * width}%`;
      key.style.width = isBlack(m) ? `${width * 0.6}%` : `${width}%`;
      const label = KEY_OF[m] ? `<span class="computer">${KEY_OF[m].toUpperCase()}</span>` : "";
      const name = m % 12 === 0 ? `<span class="name">${midiName(m)}</span>` : "";
      key.innerHTML = label + name;
      key.addEventListener("pointerdown", (e) => {
        e.preventDefault();
        key.setPointerCapture?.(e.pointerId);
        this.pointers.set(e.pointerId, m);
        this.press(m, 90);
      });
      const lift = (e) => {
        const held = this.pointers.get(e.pointerId);
        if (held !== undefined) { this.pointers.delete(e.pointerId); this.release(held); }
      };
      key.addEventListener("pointerup", lift);
      key.addEventListener("pointercancel", lift);
      this.element.appendChild(key);
      this.keys.set(m, key);
    }
  }

  listenKeys() {
    const typing = (e) => ["INPUT", "TEXTAREA", "SELECT"].includes(e.target.tagName) ||
      e.ctrlKey || e.metaKey || e.altKey;
    this.keydown = (e) => {
      const m = KEY_PITCHES[e.key.toLowerCase()];
      if (m === undefined || typing(e) || !this.visible()) return;
      e.preventDefault();
      if (!e.repeat && !this.down.has(m)) this.press(m, 90);
    };
    this.keyup = (e) => {
      const m = KEY_PITCHES[e.key.toLowerCase()];
      if (m !== undefined && this.down.has(m)) this.release(m);
    };
    window.addEventListener("keydown", this.keydown);
    window.addEventListener("keyup", this.keyup);
  }

  visible() { return this.enabled && this.element.offsetParent !== null; }

  press(m, velocity) {
    if (!this.enabled) return;
    this.down.add(m);
    this.mark(m, "player", true);
    this.onDown(m, velocity);
  }

  release(m) {
    if (!this.down.has(m)) return;
    this.down.delete(m);
    this.mark(m, "player", false);
    this.onUp(m);
  }

  releaseAll() { for (const m of [...this.down]) this.release(m); }

  // Light a key: "player" while held, "answer" while the model plays it.
  mark(m, who, on) {
    const key = this.keys.get(m);
    if (key) key.classList.toggle(who, on);
  }

  // Web MIDI keyboards, where the browser has it; returns their names.
  async listenMidi() {
    if (!navigator.requestMIDIAccess) return [];
    try {
      midiAccess = midiAccess || await navigator.requestMIDIAccess();
    } catch { return []; }
    const names = [];
    for (const input of midiAccess.inputs.values()) {
      names.push(input.name);
      input.addEventListener("midimessage", (e) => {
        if (!this.visible()) return;
        const [status, note, velocity] = e.data;
        const kind = status & 0xf0;
        if (kind === 0x90 && velocity > 0) this.press(note, velocity);
        else if (kind === 0x80 || (kind === 0x90 && velocity === 0)) this.release(note);
      });
    }
    return names;
  }
}
