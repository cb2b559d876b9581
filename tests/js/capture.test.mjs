// utjima/web/capture/: the protocol and the manifest it becomes (protocol.js), the quality
// measurements and warnings (quality.js), and the zip made in the browser (zip.js).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import * as P from "../../utjima/web/capture/protocol.js";
import * as Q from "../../utjima/web/capture/quality.js";
import { crc32, zipBlob } from "../../utjima/web/capture/zip.js";

const DOC = JSON.parse(readFileSync(new URL("../../utjima/web/capture/protocol.json", import.meta.url), "utf8"));

test("the shipped protocol reads, covers what the judge must tell apart, and scales", () => {
  const p = P.readProtocol(DOC);
  const ids = p.prompts.map((x) => x.id);
  for (const id of ["neutral", "look_around", "talking", "subtle_smile", "big_smile", "laughing",
    "yawn", "surprise", "grimace", "crying", "covered", "leave"]) assert.ok(ids.includes(id), id);
  assert.ok(p.prompts.find((x) => x.id === "talking").say.ko);
  const q = P.readProtocol(DOC, { scale: 0.15 });
  assert.deepEqual(q.prompts.map((x) => x.id), ids, "a shortened run keeps every segment");
  assert.equal(q.prompts[0].durationMs, Math.round(DOC.prompts[0].duration_ms * 0.15));
  assert.ok(P.totalMs(q) < 30_000, `a test run takes ${P.totalMs(q)} ms`);
  assert.ok(P.totalMs(p) > 100_000);
  assert.throws(() => P.readProtocol(DOC, { scale: 0.01 }), /scale must be in/);
  assert.throws(() => P.readProtocol(DOC, { scale: 2 }), /scale must be in/);
});

test("a bad protocol file is refused with what is wrong", () => {
  const bad = (change, re) => {
    const d = structuredClone(DOC);
    change(d);
    assert.throws(() => P.readProtocol(d), re);
  };
  bad((d) => { d.format = "x"; }, /format must be/);
  bad((d) => { d.prompts[1].id = d.prompts[0].id; }, /used twice/);
  bad((d) => { d.prompts[0].emotion = "joy"; }, /emotion must be one of/);
  bad((d) => { d.prompts[0].smile = 2; }, /smile must be 0, 1 or null/);
  bad((d) => { d.prompts[0].duration_ms = 1200; }, /no labelled time/);
  bad((d) => { delete d.prompts[0].text.ko; }, /needs "en" and "ko"/);
});

test("labels come from the timeline: the margins after a prompt change stay unlabelled", () => {
  const p = P.readProtocol(DOC);
  const laugh = p.prompts.find((x) => x.id === "laughing");
  assert.deepEqual(P.segmentFor(laugh, p), {
    start_ms: DOC.margin_start_ms, end_ms: DOC.prompts[laugh.index].duration_ms - DOC.margin_end_ms,
    smile: 1, emotion: "happy", face: 1, prompt: "laughing",
  });
  const covered = p.prompts.find((x) => x.id === "covered");
  assert.equal(P.segmentFor(covered, p).smile, null);
  assert.equal(P.segmentFor(covered, p).face, 0);
  const entry = P.clipEntry({
    participant: "p-ab12", session: "s20250101-1200-wxyz", prompt: laugh, protocol: p,
    timesMs: [3.04, 101.26], quality: {}, capture: {},
  });
  assert.equal(entry.id, "p-ab12-s20250101-1200-wxyz-06-laughing");
  assert.equal(entry.frames_dir, entry.id);
  assert.deepEqual(entry.times_ms, [3, 101.3]);
  assert.equal(entry.clip_smile, 1);
  assert.equal(P.frameName(entry.id, 7), `${entry.id}/000007.jpg`);
  assert.deepEqual(P.manifest([entry]), { format: "utjima.clips/1", crop: "full", clips: [entry] });
});

test("ids: random ones read aloud well and match the server's pattern", () => {
  let x = 1;
  const rand = () => ((x = (x * 16807) % 2147483647) / 2147483647);
  const pid = P.randomId("p-", 6, rand);
  assert.match(pid, /^p-[a-z2-9]{6}$/);
  assert.ok(P.ID_RE.test(pid));
  const sid = P.sessionId(new Date(Date.UTC(2025, 0, 2, 3, 4)), rand);
  assert.match(sid, /^s20250102-0304-[a-z2-9]{4}$/);
  assert.ok(P.ID_RE.test(sid));
  assert.ok(!P.ID_RE.test("-p") && !P.ID_RE.test("P01") && !P.ID_RE.test("a/b"));
});

function rgba(w, h, value) {
  return new Uint8ClampedArray(w * h * 4).fill(value);
}

test("frame statistics: brightness and change between frames", () => {
  const a = Q.thumbStats(rgba(4, 2, 100));
  assert.equal(a.luma, 100);
  assert.equal(a.motion, null);
  const b = Q.thumbStats(rgba(4, 2, 130), a.grey);
  assert.equal(b.motion, 30);
});

test("warnings come from the measured window and respect what the prompt expects", () => {
  const cfg = P.readProtocol(DOC).quality;
  const m = new Q.QualityMonitor(cfg);
  const face = (t, width = 200) => ({ t_ms: t, face: true, box: [100, 100, 100 + width, 300], smile_prob: 0.1 });
  for (let t = 0; t <= 1000; t += 100) {
    m.frame(t, { luma: 120, motion: 2 });
    m.detection(face(t), 640);
  }
  assert.deepEqual(m.warnings(1000), []);
  for (let t = 1100; t <= 2500; t += 100) {
    m.frame(t, { luma: 20, motion: 40 });
    m.detection({ t_ms: t, face: false, box: null, smile_prob: null }, 640);
  }
  assert.deepEqual(m.warnings(2500), ["no_face", "dark", "motion"]);
  const covered = { face: 0, motionOk: true };
  assert.deepEqual(m.warnings(2500, covered), ["dark"], "a covered face is what the prompt asks for");
  for (let t = 2600; t <= 4000; t += 100) {
    m.frame(t, { luma: 120, motion: 1 });
    m.detection(face(t, 40), 640);
  }
  assert.deepEqual(m.warnings(4000), ["small"]);
  const idle = new Q.QualityMonitor(cfg);
  idle.frame(0, { luma: 120, motion: null });
  assert.deepEqual(idle.warnings(5000), [], "no detector, no face warnings");
});

test("per-frame quality takes the detector result nearest each frame", () => {
  const results = [0, 33, 66, 100, 133, 400].map((t) => ({ t_ms: t, face: t !== 66, box: [0, 0, 64, 64], smile_prob: t / 1000 }));
  const frames = [{ t: 10, luma: 99.94, motion: null }, { t: 70, luma: 100, motion: 1.234 }, { t: 800, luma: 50, motion: 3 }];
  const q = Q.frameQuality(frames, results, 640);
  assert.deepEqual(q.face, [1, 0, null]);
  assert.deepEqual(q.face_frac, [0.1, null, null]);
  assert.deepEqual(q.smile_prob, [0, null, null]);
  assert.deepEqual(q.luma, [99.9, 100, 50]);
  assert.deepEqual(q.motion, [null, 1.23, 3]);
  const prompt = { face: 1, motionOk: false };
  assert.deepEqual(Q.clipProblems(q, prompt, { minLuma: 60, minFaceFrac: 0.15, maxMotion: 2 }),
    { no_face: 33, dark: 33, small: 33, motion: 33 });
});

test("CRC-32 of the standard check string", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
});

test("the zip opens in Python's zipfile with every byte intact", async () => {
  const frame = new Uint8Array(5000).map((_, i) => (i * 7) % 256);
  const blob = await zipBlob([
    { name: "manifest.json", data: '{"format": "utjima.clips/1", "note": "웃지마"}' },
    { name: "clip-01/000000.jpg", data: new Blob([frame]) },
    { name: "clip-01/000001.jpg", data: frame },
  ], new Date(2025, 4, 6, 7, 8, 10));
  const dir = mkdtempSync(join(tmpdir(), "utjima-zip-"));
  const path = join(dir, "s.zip");
  writeFileSync(path, new Uint8Array(await blob.arrayBuffer()));
  const py = `
import sys, zipfile, json
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
print(json.dumps({i.filename: [i.file_size, i.date_time, i.compress_type] for i in z.infolist()}))
print(json.loads(z.read("manifest.json"))["note"])
print(sum(z.read("clip-01/000001.jpg")))`;
  let out;
  try {
    out = execFileSync(process.env.PYTHON || "python3", ["-c", py, path], { encoding: "utf8" }).split("\n");
  } catch (e) {
    if (e.code === "ENOENT") return; // no Python here: the e2e test opens the browser's zip
    throw e;
  }
  const info = JSON.parse(out[0]);
  assert.deepEqual(info["clip-01/000000.jpg"], [5000, [2025, 5, 6, 7, 8, 10], 0]);
  assert.equal(out[1], "웃지마");
  assert.equal(Number(out[2]), frame.reduce((a, b) => a + b, 0));
});
