// The piano roll: a song's events drawn on a canvas, pitch up, time across, beats marked,
// the primer in another colour, and a playhead.
import {LOWEST, HIGHEST, isBlack, midiName, midiOf} from "./notes.js";

export class Roll {
  constructor(canvas) {
    this.canvas = canvas;
    this.events = [];
    this.primer = 0;
    this.beat = null;  // playhead, in beats
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  show(events, primer = 0) {
    this.events = events;
    this.primer = primer;
    this.beat = null;
    this.draw();
  }

  playhead(beat) {
    this.beat = beat;
    this.draw();
  }

  draw() {
    const c = this.canvas, ratio = window.devicePixelRatio || 1;
    const width = c.clientWidth, height = c.clientHeight;
    if (!width || !height) return;
    c.width = width * ratio;
    c.height = height * ratio;
    const g = c.getContext("2d");
    g.scale(ratio, ratio);
    const styles = getComputedStyle(document.documentElement);
    const color = (name) => styles.getPropertyValue(name).trim();
    const gutter = 34, rows = HIGHEST - LOWEST + 1, row = height / rows;
    g.fillStyle = color("--roll-bg");
    g.fillRect(0, 0, width, height);
    for (let m = LOWEST; m <= HIGHEST; m++) {
      const y = height - (m - LOWEST + 1) * row;
      if (isBlack(m)) {
        g.fillStyle = color("--roll-black");
        g.fillRect(gutter, y, width - gutter, row);
      }
      if (m % 12 === 0) {
        g.fillStyle = color("--muted");
        g.font = "10px system-ui, sans-serif";
        g.fillText(midiName(m), 4, y + row - 2);
        g.fillStyle = color("--roll-line");
        g.fillRect(gutter, y + row - 1, width - gutter, 1);
      }
    }
    const beats = Math.max(this.events.reduce((s, [, q]) => s + q, 0) / 4, 4);
    const scale = (width - gutter - 4) / beats;
    g.fillStyle = color("--roll-line");
    const every = scale * 4 < 14 ? 16 : 4;
    for (let b = 0; b <= beats; b += every) g.fillRect(gutter + b * scale, 0, 1, height);
    let t = 0;
    this.events.forEach(([cls, quarters], i) => {
      const beatsLong = quarters / 4;
      if (cls > 0) {
        const y = height - (midiOf(cls) - LOWEST + 1) * row;
        g.fillStyle = i < this.primer ? color("--primer") : color("--note");
        g.beginPath();
        g.roundRect(gutter + t * scale + 0.5, y + 0.5, Math.max(beatsLong * scale - 1.5, 2),
                    Math.max(row - 1, 2), Math.min(3, row / 3));
        g.fill();
      }
      t += beatsLong;
    });
    if (this.beat !== null) {
      g.fillStyle = color("--playhead");
      g.fillRect(gutter + this.beat * scale, 0, 2, height);
    }
  }
}
