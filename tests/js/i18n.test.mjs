// utjima/web/game/i18n.js: both languages have every key, and the Korean wording issue 10
// asked for (item 7): "N선승제", "플레이어" (never "선수"), a natural draw line.
import assert from "node:assert/strict";
import { test } from "node:test";

let saved = "ko";
globalThis.localStorage = { getItem: () => saved, setItem: (_, v) => { saved = v; } };
const { DICT, t, errorText } = await import("../../utjima/web/game/i18n.js");

test("English and Korean have the same keys", () => {
  assert.deepEqual(Object.keys(DICT.ko).sort(), Object.keys(DICT.en).sort());
});

test("Korean says 선승제 and 플레이어, and a draw reads naturally", () => {
  saved = "ko";
  assert.equal(t("first_to", { n: 3 }), "3선승제");
  assert.equal(t("draw"), "모두 끝까지 참았어요! 무승부");
  const players = Object.entries(DICT.ko).filter(([, v]) => v.includes("선수"));
  assert.deepEqual(players, []);
  assert.equal(t("join_as_player"), "플레이어로 참가");
});

test("server error codes are worded in the player's language", () => {
  saved = "ko";
  assert.equal(errorText("room_full", "the room is full (4 players): join as a spectator"), "방이 꽉 찼어요. 관전은 할 수 있어요.");
  assert.equal(errorText("something_new", "a new problem"), "오류: a new problem");
  saved = "en";
  assert.equal(errorText("room_locked", "the host has locked this room"), "The host has locked that room.");
});
