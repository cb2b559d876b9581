// A scripted stand-in for /static/detector/detector.js, for the browser test of the game flow alone
// (pages, protocol, WebRTC) when the bundled model cannot tell a smile from a neutral face
// yet. Same interface (docs/detector_api.md); emits 15 results a second whose smile_prob is
// whatever the test sets in window.__stubProb (default 0.1), with a face unless
// window.__stubFace === false. The real detector is tested by the other e2e test.

export async function createDetector() {
  let timer = null;
  const det = {
    backend: "stub", threads: 0, contract: null, onresult: null, onerror: null,
    async start() {
      clearInterval(timer);
      timer = setInterval(() => {
        const face = window.__stubFace !== false;
        det.onresult?.({
          t_ms: performance.now(), face, box: face ? [200, 140, 440, 380] : null,
          smile_prob: face ? (window.__stubProb ?? 0.1) : null, emotion: null,
          ms: { total: 0 }, fps: 15,
        });
      }, 66);
    },
    stop() { clearInterval(timer); },
    reset() {},
    dispose() { clearInterval(timer); },
  };
  return det;
}
