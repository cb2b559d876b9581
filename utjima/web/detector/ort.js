// onnxruntime-web, loaded and set up the one way the detector uses it (worker.js; the browser
// benchmark loads it too, so what it times runs as the detector runs). Call from a worker:
// the sessions run right there, no proxy worker.

/** The ort module for `backend` ("wasm" | "webgpu") from `ortBase` (onnxruntime-web's dist/,
 *  an absolute URL ending in /) with `threads` WASM threads. */
export async function loadOrt(ortBase, backend, threads) {
  const file = ortFile(backend);
  const ort = await import(ortBase + file);
  ort.env.wasm.wasmPaths = ortBase;
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.proxy = false; // we are the worker already
  ort.env.logLevel = "error";
  return ort;
}

/** The onnxruntime-web build a backend needs. */
export function ortFile(backend) {
  return backend === "webgpu" ? "ort.webgpu.min.mjs" : "ort.wasm.min.mjs";
}

/** The bytes at `url`; throws with the URL and status on an HTTP error. */
export async function fetchBytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

/** The JSON document at `url`. */
export async function fetchJson(url) {
  return JSON.parse(new TextDecoder().decode(await fetchBytes(url)));
}
