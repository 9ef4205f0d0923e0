// The vocabulary of SPEC section 1, as the Python side names it: class 1-24 = MIDI 48-71.
export const LOWEST = 48, HIGHEST = 71, REST = 0;
const NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];

export const midiOf = (cls) => 47 + cls;
export const classOf = (midi) => midi - 47;
export const isBlack = (midi) => [1, 3, 6, 8, 10].includes(midi % 12);
export function midiName(midi) {
  return NAMES[midi % 12] + (Math.floor(midi / 12) - 1);
}
export function eventName([cls, quarters]) {
  const name = cls === REST ? "-" : midiName(midiOf(cls));
  return quarters === 4 ? name : `${name}:${quarters / 4}`;
}
export const beatsOf = (events) => events.reduce((sum, [, q]) => sum + q, 0) / 4;
export function clock(seconds) {
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
