import { describe, expect, it } from "vitest";
import { pauseMarks, pauseSpans, search, seekTarget, statusText, title } from "./library";
import type { LibraryItem } from "./types";
import { clock } from "./format";

function item(over: Partial<LibraryItem> = {}): LibraryItem {
  return {
    id: "pbx-1", source: "pbx", parties: ["100", "102"], started_ms: Date.UTC(2026, 10, 27, 12), duration_ms: 10_000,
    status: "completed", markers: [], has_cdr: true, file: "/x.wav", error: null, ...over,
  };
}

describe("library", () => {
  it("searches every word across parties, status and source", () => {
    const items = [item(), item({ id: "local-a", source: "local", parties: ["me", "+4930"], status: "completed" })];
    expect(search(items, "")).toHaveLength(2);
    expect(search(items, "102").map((i) => i.id)).toEqual(["pbx-1"]);
    expect(search(items, "local 4930").map((i) => i.id)).toEqual(["local-a"]);
    expect(search(items, "102 local")).toHaveLength(0);
  });
  it("marks pauses on the waveform", () => {
    const markers = [
      { offset_ms: 0, event: "start", source: "policy" },
      { offset_ms: 2_500, event: "pause", source: "message" },
      { offset_ms: 2_500, event: "resume", source: "message" },
      { offset_ms: 10_000, event: "stop", source: "policy" },
    ];
    expect(pauseMarks(markers, 10_000)).toEqual([{ at: 0.25, event: "pause" }, { at: 0.25, event: "resume" }]);
    expect(pauseSpans(markers, 10_000)).toEqual([{ start: 0.25, end: 0.25 }]);
    expect(pauseSpans([{ offset_ms: 5_000, event: "pause", source: "dtmf" }], 10_000)).toEqual([{ start: 0.5, end: 1 }]);
    expect(pauseMarks(markers, 0)).toEqual([]);
  });
  it("seeks where the waveform is clicked", () => {
    expect(seekTarget(50, 200, 10_000)).toBe(2_500);
    expect(seekTarget(-5, 200, 10_000)).toBe(0);
    expect(seekTarget(500, 200, 10_000)).toBe(10_000);
    expect(seekTarget(1, 0, 10_000)).toBe(0);
  });
  it("names calls and explains damaged files", () => {
    expect(title(item())).toBe("100 ↔ 102");
    expect(title(item({ parties: [] }))).toBe("(unknown parties)");
    expect(statusText(item({ status: "damaged", error: "not a playable WAV file" }))).toBe("damaged: not a playable WAV file");
    expect(clock(3_723_000)).toBe("1:02:03");
  });
});
