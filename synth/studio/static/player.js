// A song player: the server's WAV (rendered by the same piano and effects as the CLI) in an
// audio element, with the piano roll's playhead and a progress bar following it.
import {clock} from "./notes.js";

export class Player {
  constructor({button, roll, time, length, bar}) {
    Object.assign(this, {button, roll, time, length, bar});
    this.audio = new Audio();
    this.audio.preload = "auto";
    this.bpm = null;  // set by load(): the song's tempo
    this.startedAt = 0;
    this.onPlaying = null;
    button.addEventListener("click", () => this.toggle());
    this.audio.addEventListener("playing", () => {
      button.classList.add("playing");
      button.textContent = "■";
      if (this.onPlaying) { this.onPlaying(); this.onPlaying = null; }
      this.follow();
    });
    const stopped = () => { button.classList.remove("playing"); button.textContent = "▶"; };
    this.audio.addEventListener("pause", stopped);
    this.audio.addEventListener("ended", () => { stopped(); this.roll.playhead(null); });
    this.audio.addEventListener("loadedmetadata", () => {
      this.length.textContent = clock(this.total());
    });
    this.audio.addEventListener("error", () => {
      stopped();
      if (this.src) window.dispatchEvent(new CustomEvent("studio-error",
        {detail: "this song could not be played"}));
    });
  }

  // A song composed just now streams while it is saved: its length is not in the file yet.
  total() {
    const d = this.audio.duration;
    return isFinite(d) && d < this.seconds * 1.5 + 5 ? d : this.seconds;
  }

  load(src, bpm, seconds) {
    this.stop();
    this.seconds = seconds || 0;
    this.src = src;
    this.bpm = bpm;
    this.audio.src = src || "";
    this.time.textContent = "0:00";
    this.length.textContent = clock(seconds || 0);
    this.bar.style.width = "0";
    this.button.disabled = !src;
  }

  play() { if (this.src) return this.audio.play().catch(() => {}); }
  stop() {
    this.audio.pause();
    if (this.src && this.audio.readyState > 0) {
      try { this.audio.currentTime = 0; } catch { /* a stream cannot seek: reloaded below */ }
      if (this.audio.currentTime > 0) this.audio.src = this.src;
    }
  }
  toggle() { this.audio.paused ? this.play() : this.stop(); }

  follow() {
    if (this.audio.paused) return;
    const t = this.audio.currentTime;
    this.time.textContent = clock(t);
    if (this.total()) this.bar.style.width = `${Math.min(100, 100 * t / this.total())}%`;
    this.roll.playhead(t * this.bpm / 60);
    requestAnimationFrame(() => this.follow());
  }
}
