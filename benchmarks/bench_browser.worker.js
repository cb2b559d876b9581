// Times one model file alone on constant input, for benchmarks/bench_browser.py only: no
// page ships or loads this. The benchmark starts it on the page it measures as a blob:
// module worker, so it imports the detector's modules by absolute URL. onnxruntime-web is
// loaded by the detector's own loadOrt (/static/detector/ort.js), with the backend and
// threads the detector reported, so a model runs here as it runs in the detector.
//
// page -> worker: {id, origin, model, ortBase, backend, threads, role, n, warmup, options}
//   role: a model.json "files" role ("encoder_int8", "seed", "face_detector", ...) or
//   {path, inputs: {name: shape}} for a file in the model folder that model.json does not list;
//   options: extra onnxruntime session options.
// worker -> page: {id, value: {path, times: [ms, ...]}} | {id, error}

let lib = null; // {ort, contract, detector, modelUrl, backend, fetchBytes}: from the first message
const sessions = {};

async function setup({ origin, model, ortBase, backend, threads }) {
  const { fetchBytes, fetchJson, loadOrt } = await import(new URL("/static/detector/ort.js", origin).href);
  const { readContract } = await import(new URL("/static/detector/pipeline.js", origin).href);
  if (threads > 1 && self.crossOriginIsolated !== true) throw new Error(`threads=${threads} needs a cross-origin isolated worker`);
  const modelUrl = new URL(model, origin);
  const contract = await fetchJson(new URL("model.json", modelUrl));
  const ort = await loadOrt(new URL(ortBase, origin).href, backend, threads);
  // the face detector's input is declared in model.json "crop", not in its "files" entry
  const { files, crop } = readContract(contract);
  const detector = { path: files.detector.path, inputName: crop.detector.inputName, size: crop.detector.inputSize };
  return { ort, contract, detector, modelUrl, backend, fetchBytes };
}

function fileEntry(role) {
  if (typeof role !== "string") return role;
  const entry = lib.contract.files[role];
  if (!entry) throw new Error(`model.json has no file role ${JSON.stringify(role)}; it lists ${Object.keys(lib.contract.files)}`);
  if (!entry.inputs && entry.path === lib.detector.path) {
    const d = lib.detector;
    return { ...entry, inputs: { [d.inputName]: [1, 3, d.size, d.size] } };
  }
  return entry;
}

async function bench({ role, n, warmup, options }) {
  const { ort } = lib;
  const entry = fileEntry(role);
  if (!entry.inputs) throw new Error(`no input shapes for ${JSON.stringify(entry.path)}`);
  const key = entry.path + JSON.stringify(options || {});
  if (!sessions[key]) {
    sessions[key] = await ort.InferenceSession.create(await lib.fetchBytes(new URL(entry.path, lib.modelUrl)),
      { executionProviders: [lib.backend], graphOptimizationLevel: "all", ...options });
  }
  const sess = sessions[key];
  const feeds = {};
  for (const [name, shape] of Object.entries(entry.inputs)) {
    const dims = shape.map((d) => (typeof d === "number" ? d : 1)); // "n" -> a batch of 1
    feeds[name] = new ort.Tensor("float32", new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(0.5), dims);
  }
  const times = [];
  for (let i = 0; i < warmup + n; i++) {
    const t0 = performance.now();
    await sess.run(feeds);
    if (i >= warmup) times.push(performance.now() - t0);
  }
  return { path: entry.path, times };
}

// one message at a time, in arrival order (they share one onnxruntime instance)
let chain = Promise.resolve();
self.onmessage = (ev) => {
  const msg = ev.data;
  chain = chain.then(async () => {
    try {
      lib ??= await setup(msg);
      self.postMessage({ id: msg.id, value: await bench(msg) });
    } catch (e) {
      self.postMessage({ id: msg.id, error: String(e && e.message ? e.message : e) });
    }
  });
};
