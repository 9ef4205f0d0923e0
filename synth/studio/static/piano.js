// The Web Audio piano: the package's own samples and release sounds (synth/assets/piano),
// played as synth/sound/piano.py plays them and through the live chain of synth/sound/effects.py, with the
// numbers served by /api/piano (synth/studio/webpiano.py): velocity gain and brightness shelf,
// damper times, release sounds, the 24 dB/octave low-pass (an IIRFilterNode fitted to the
// ladder), the reverb (a ConvolverNode of pedalboard's own impulse response), the level of
// `synth live` and a limiter at its ceiling. Samples load when the piano first starts.
import {getJSON} from "./api.js";

const raisedCosine = (from, points = 64) =>
  Float32Array.from({length: points}, (_, i) => from * (0.5 + 0.5 * Math.cos(Math.PI * i / (points - 1))));

// The limiter: a compressor at synth's ceiling, hard (no knee, ratio 20), quick.
function limiterIn(ctx, settings) {
  const limiter = ctx.createDynamicsCompressor();
  limiter.threshold.value = settings.limit_db;
  limiter.knee.value = 0;
  limiter.ratio.value = 20;
  limiter.attack.value = 0.002;
  limiter.release.value = 0.1;
  return limiter;
}

// Chromium's compressor adds a make-up gain of its own (0.7 dB at this ceiling) that a
// limiter must not: measured once, on a quiet tone offline, and taken off the level.
let measured = null;
function makeup(settings) {
  if (!measured) {
    const ctx = new OfflineAudioContext(1, settings.rate / 2, settings.rate);
    const tone = ctx.createConstantSource();
    tone.offset.value = 0.01;
    tone.connect(limiterIn(ctx, settings)).connect(ctx.destination);
    tone.start();
    measured = ctx.startRendering().then((out) => {
      const samples = out.getChannelData(0), gain = samples[samples.length - 1] / 0.01;
      return gain > 0.5 && gain < 2 ? gain : 1;
    });
  }
  return measured;
}

export class Piano {
  constructor() {
    this.ctx = null;
    this.settings = null;
    this.buffers = new Map();   // MIDI pitch -> its sound
    this.releases = new Map();  // MIDI pitch -> the sound of its key coming up
    this.held = new Map();      // key -> voice, for keys played by hand
  }

  // Must be called from a click or key press: browsers start audio only then.
  async start() {
    if (!this.ctx) {
      const settings = await getJSON("/api/piano");
      const ctx = new (window.AudioContext || window.webkitAudioContext)(
        {latencyHint: "interactive", sampleRate: settings.rate});
      await this.attach(ctx, settings);
      await this.loadAll(settings.samples);
    }
    if (this.ctx.state !== "running") await this.ctx.resume();
    return this;
  }

  // Play into `ctx` (an AudioContext or an OfflineAudioContext) with `settings` from
  // /api/piano; `dry`: no low-pass or reverb (the level and the limiter stay, as --no-fx).
  async attach(ctx, settings, dry = false) {
    this.ctx = ctx;
    this.settings = settings;
    this.input = ctx.createGain();  // every voice sums here: the mono piano
    const level = ctx.createGain();
    level.gain.value = settings.level / await makeup(settings);
    const limiter = limiterIn(ctx, settings);
    let node = this.input;
    if (!dry && settings.lowpass) {
      const lowpass = ctx.createIIRFilter(settings.lowpass.feedforward, settings.lowpass.feedback);
      const reverb = ctx.createConvolver();
      reverb.normalize = false;  // the impulse response is the reverb's own, dry path included
      reverb.buffer = await this.decode(settings.reverb);
      node = node.connect(lowpass).connect(reverb);
    }
    node.connect(level).connect(limiter).connect(ctx.destination);
    return this;
  }

  async decode(url) {
    const data = await (await fetch(url)).arrayBuffer();
    return await this.ctx.decodeAudioData(data);
  }

  async load(midi) {
    if (!this.buffers.has(midi)) {
      const [sound, release] = await Promise.all([
        this.decode(`/piano/${midi}.flac`),
        this.settings.releases.includes(midi) ? this.decode(`/piano/release/${midi}.flac`) : null]);
      this.buffers.set(midi, sound);
      if (release) this.releases.set(midi, release);
    }
    return this.buffers.get(midi);
  }

  loadAll(keys) { return Promise.all([...new Set(keys)].map((m) => this.load(m))); }

  get now() { return this.ctx ? this.ctx.currentTime : 0; }

  // Strike `midi` at audio time `when`; returns the voice, to release or cut.
  strike(midi, velocity = 90, when = 0) {
    const buffer = this.ctx && this.buffers.get(midi);
    if (!buffer) return null;
    const s = this.settings, ctx = this.ctx;
    const v = Math.max(1, Math.min(127, Math.round(velocity)));
    const at = Math.max(when, ctx.currentTime);
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    const damper = ctx.createGain();  // the key coming up fades the string out here
    const gain = ctx.createGain();
    gain.gain.value = s.velocity.gain[v];
    source.connect(gain).connect(damper).connect(this.input);
    const shelf = s.velocity.shelf[v];
    if (shelf !== 0) {  // velocity's brightness: the sound above 1 kHz over its first seconds
      const highpass = ctx.createIIRFilter(s.shelf.feedforward, s.shelf.feedback);
      const amount = ctx.createGain();
      amount.gain.value = shelf;
      amount.gain.setValueCurveAtTime(raisedCosine(shelf), at + s.shelf.seconds - 1, 1);
      source.connect(highpass).connect(amount).connect(damper);
    }
    source.start(at);
    return {midi, source, gain: damper, at, level: s.velocity.gain[v], up: null};
  }

  // The key comes up at `when`: the damper fades the string (a raised cosine over the key's
  // damper time) and the release sound plays, softer the longer the string has rung.
  release(voice, when = 0) {
    if (!voice || voice.up !== null) return;
    const s = this.settings, ctx = this.ctx;
    if (Math.max(when, ctx.currentTime) <= voice.at) {  // cut before it sounds: it never does
      voice.up = voice.at;
      try { voice.source.stop(); } catch { /* already stopped */ }
      return;
    }
    const at = Math.max(when, voice.at + 1 / s.rate, ctx.currentTime);
    const damper = s.damper[voice.midi];
    voice.up = at;
    voice.gain.gain.setValueCurveAtTime(raisedCosine(1, 256), at, damper);
    try { voice.source.stop(at + damper); } catch { /* already stopped */ }
    const sound = this.releases.get(voice.midi);
    if (!sound) return;
    const held = at - voice.at;
    const source = ctx.createBufferSource(), gain = ctx.createGain();
    source.buffer = sound;
    gain.gain.value = voice.level * s.release.level * Math.max(s.release.floor, 1 - s.release.fade * held);
    source.connect(gain).connect(this.input);
    source.start(at);
    source.stop(at + s.release.seconds);
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

// Render `notes` ({midi, velocity, at, seconds}, times in seconds) offline through the page's
// piano and chain: stereo, `seconds` long. For tests and for comparing with synth's own piano.
export async function renderPhrase(notes, seconds, dry = false) {
  const settings = await getJSON("/api/piano");
  const ctx = new OfflineAudioContext(2, Math.ceil(seconds * settings.rate), settings.rate);
  const offline = await new Piano().attach(ctx, settings, dry);
  await offline.loadAll(notes.map((n) => n.midi));
  for (const n of notes) offline.note(n.midi, n.velocity, n.at, n.seconds);
  const audio = await ctx.startRendering();
  return [audio.getChannelData(0), audio.getChannelData(1)];
}

export const piano = new Piano();
