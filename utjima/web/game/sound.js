// The game's sounds, synthesised with WebAudio (no sound files): countdown beeps, the "go"
// chord, a laugh buzzer, the "almost" tick, a win fanfare. A mute switch is remembered in
// localStorage. Browsers let a page start audio only after a user gesture, so the context
// is created (or resumed) on the first click or key press.
//
// `sound.played` lists every cue asked for ({name, muted, t_ms}), for the browser tests.

const KEY = "utjima:mute";

// Each cue: notes as [start s, frequency Hz, length s, wave, gain, glide-to Hz].
const CUES = {
  beep: [[0, 660, 0.12, "square", 0.18]],
  go: [[0, 523, 0.16, "square", 0.16], [0, 659, 0.16, "square", 0.12], [0, 784, 0.3, "square", 0.12]],
  tick: [[0, 1200, 0.05, "triangle", 0.2]],
  buzzer: [[0, 220, 0.5, "sawtooth", 0.22, 90], [0, 233, 0.5, "sawtooth", 0.14, 95]],
  fanfare: [[0, 523, 0.14, "square", 0.14], [0.14, 659, 0.14, "square", 0.14], [0.28, 784, 0.14, "square", 0.14],
    [0.42, 1047, 0.5, "square", 0.16], [0.42, 784, 0.5, "triangle", 0.1], [0.42, 659, 0.5, "triangle", 0.1]],
  pop: [[0, 880, 0.07, "sine", 0.18, 1320]],
};

class Sound {
  constructor() {
    this.ctx = null;
    this.played = [];
    this.listeners = new Set();
    const unlock = () => this._context();
    addEventListener("pointerdown", unlock, { capture: true });
    addEventListener("keydown", unlock, { capture: true });
  }

  get muted() {
    return localStorage.getItem(KEY) === "1";
  }

  set muted(v) {
    localStorage.setItem(KEY, v ? "1" : "0");
    for (const f of this.listeners) f(v);
  }

  onchange(f) {
    this.listeners.add(f);
  }

  _context() {
    const AC = globalThis.AudioContext || globalThis.webkitAudioContext;
    if (!AC) return null;
    if (!this.ctx) this.ctx = new AC();
    if (this.ctx.state === "suspended") this.ctx.resume().catch(() => {});
    return this.ctx;
  }

  /** Play a cue by name (see CUES); silent when muted or when audio is unavailable. */
  play(name) {
    const notes = CUES[name];
    if (!notes) throw new Error(`unknown sound ${name}; known: ${Object.keys(CUES).join(", ")}`);
    this.played.push({ name, muted: this.muted, t_ms: performance.now() });
    if (this.muted) return;
    const ctx = this._context();
    if (!ctx) return;
    const t0 = ctx.currentTime + 0.01;
    for (const [at, hz, len, wave, gain, glide] of notes) {
      const osc = ctx.createOscillator();
      const amp = ctx.createGain();
      osc.type = wave;
      osc.frequency.setValueAtTime(hz, t0 + at);
      if (glide) osc.frequency.exponentialRampToValueAtTime(glide, t0 + at + len);
      amp.gain.setValueAtTime(0.0001, t0 + at);
      amp.gain.exponentialRampToValueAtTime(gain, t0 + at + 0.01);
      amp.gain.exponentialRampToValueAtTime(0.0001, t0 + at + len);
      osc.connect(amp).connect(ctx.destination);
      osc.start(t0 + at);
      osc.stop(t0 + at + len + 0.02);
    }
  }
}

export const sound = new Sound();
globalThis.utjimaSound = sound;
