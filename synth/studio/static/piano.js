// The Web Audio piano: the package's own samples (served from synth/assets/piano), each key
// the nearest sample shifted to pitch, held while the key is down, released with a short fade.
import {getJSON} from "./api.js";

export class Piano {
  constructor() {
    this.ctx = null;
    this.samples = [];
    this.buffers = new Map();
    this.held = new Map();  // key -> voice, for keys played by hand
  }

  // Must be called from a click or key press: browsers start audio only then.
  async start() {
    if (!this.ctx) {
      this.ctx = new (window.AudioContext || window.webkitAudioContext)({latencyHint: "interactive"});
      this.out = this.ctx.createGain();
      this.out.gain.value = 0.9;
      const limiter = this.ctx.createDynamicsCompressor();
      limiter.threshold.value = -6;
      limiter.ratio.value = 12;
      this.out.connect(limiter).connect(this.ctx.destination);
      this.samples = (await getJSON("/api/piano")).samples;
      await Promise.all(this.samples.map((m) => this.load(m)));
    }
    if (this.ctx.state !== "running") await this.ctx.resume();
    return this;
  }

  async load(midi) {
    if (!this.buffers.has(midi)) {
      const data = await (await fetch(`/piano/${midi}.flac`)).arrayBuffer();
      this.buffers.set(midi, await this.ctx.decodeAudioData(data));
    }
    return this.buffers.get(midi);
  }

  get now() { return this.ctx ? this.ctx.currentTime : 0; }

  nearest(midi) {
    let best = this.samples[0];
    for (const s of this.samples) if (Math.abs(s - midi) < Math.abs(best - midi)) best = s;
    return best;
  }

  // Strike `midi` at audio time `when`; returns the voice, to release or cut.
  strike(midi, velocity = 90, when = 0) {
    if (!this.ctx || !this.samples.length) return null;
    const base = this.nearest(midi), buffer = this.buffers.get(base);
    if (!buffer) return null;
    const source = this.ctx.createBufferSource();
    source.buffer = buffer;
    source.playbackRate.value = Math.pow(2, (midi - base) / 12);
    const gain = this.ctx.createGain();
    gain.gain.value = 2.2 * Math.pow(velocity / 100, 1.6);
    source.connect(gain).connect(this.out);
    const at = Math.max(when, this.ctx.currentTime);
    source.start(at);
    return {source, gain, at};
  }

  release(voice, when = 0, fade = 0.08) {
    if (!voice) return;
    const at = Math.max(when, voice.at, this.ctx.currentTime);
    voice.gain.gain.setTargetAtTime(0, at, fade);
    try { voice.source.stop(at + fade * 8); } catch { /* already stopped */ }
  }

  // A note of known length (an answer, a song): struck, held, released.
  note(midi, velocity, when, seconds) {
    const voice = this.strike(midi, velocity, when);
    if (voice) this.release(voice, when + seconds);
    return voice;
  }

  down(midi, velocity = 90) {
    this.up(midi);
    this.held.set(midi, this.strike(midi, velocity));
  }

  up(midi) {
    const voice = this.held.get(midi);
    if (voice) { this.release(voice); this.held.delete(midi); }
  }

  // A short click for a count-in.
  click(when, accent = false) {
    if (!this.ctx) return;
    const osc = this.ctx.createOscillator(), gain = this.ctx.createGain();
    osc.frequency.value = accent ? 1760 : 1320;
    gain.gain.setValueAtTime(0.35, when);
    gain.gain.exponentialRampToValueAtTime(0.001, when + 0.06);
    osc.connect(gain).connect(this.ctx.destination);
    osc.start(when);
    osc.stop(when + 0.08);
  }
}

export const piano = new Piano();
