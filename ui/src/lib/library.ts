// The recordings library: search, order, and where pauses sit on the waveform.
import type { LibraryItem, Marker } from "./types";
import { when } from "./format";

/** Matches every word of the query against parties, date, status and source. */
export function search(items: LibraryItem[], query: string): LibraryItem[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return items;
  return items.filter((it) => {
    const hay = [...it.parties, when(it.started_ms), it.status, it.source, it.id].join(" ").toLowerCase();
    return words.every((w) => hay.includes(w));
  });
}

export interface PauseSpan {
  /** 0..1 of the width. */
  start: number;
  end: number;
}

/**
 * Paused audio is left out of the PBX's file, so a pause and its resume land on the same
 * offset: one marker each pause, placed at the offset. Returns marker positions (0..1).
 */
export function pauseMarks(markers: Marker[], durationMs: number): { at: number; event: string }[] {
  if (!durationMs || durationMs <= 0) return [];
  return markers
    .filter((m) => m.event === "pause" || m.event === "resume")
    .map((m) => ({ at: Math.min(1, Math.max(0, m.offset_ms / durationMs)), event: m.event }));
}

/** Pause → resume pairs (an unfinished pause runs to the end). */
export function pauseSpans(markers: Marker[], durationMs: number): PauseSpan[] {
  const spans: PauseSpan[] = [];
  let open: number | null = null;
  for (const m of markers) {
    if (m.event === "pause" && open === null) open = m.offset_ms;
    if ((m.event === "resume" || m.event === "stop") && open !== null) {
      spans.push({ start: open / durationMs, end: m.offset_ms / durationMs });
      open = null;
    }
  }
  if (open !== null) spans.push({ start: open / durationMs, end: 1 });
  return spans.map((s) => ({ start: Math.max(0, Math.min(1, s.start)), end: Math.max(0, Math.min(1, s.end)) }));
}

export function title(it: LibraryItem): string {
  const p = it.parties.filter(Boolean);
  return p.length ? p.join(" ↔ ") : "(unknown parties)";
}

/** Where a click at `x` of `width` seeks to. */
export function seekTarget(x: number, width: number, durationMs: number): number {
  if (width <= 0) return 0;
  return Math.round(Math.min(1, Math.max(0, x / width)) * durationMs);
}

export function statusText(it: LibraryItem): string {
  if (it.error) return `${it.status}: ${it.error}`;
  return it.status;
}
