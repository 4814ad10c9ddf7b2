// The in-call screen: what the recording indicator and its buttons say, from the call's
// state as the engine reports it (never guessed: the button follows the PBX's answer).
import type { CallView, Registration } from "./types";
import { clock } from "./format";

export interface RecordingUi {
  /** What the indicator says. */
  label: string;
  /** recording | paused | off: the indicator's colour. */
  tone: "recording" | "paused" | "off";
  showPause: boolean;
  showResume: boolean;
  /** A pause/resume is on its way: both buttons wait. */
  busy: boolean;
  error: string | null;
}

export function recordingUi(c: CallView): RecordingUi {
  const busy = c.pending !== null;
  const error = c.control_error;
  if (c.state !== "up") {
    return { label: "", tone: "off", showPause: false, showResume: false, busy: false, error: null };
  }
  switch (c.recording) {
    case "recording":
      return {
        label: busy ? "Recording — pausing…" : "Recording",
        tone: "recording", showPause: true, showResume: false, busy, error,
      };
    case "paused":
      return {
        label: busy ? "Paused — resuming…" : "Recording paused",
        tone: "paused", showPause: false, showResume: true, busy, error,
      };
    default:
      return { label: "Not recorded", tone: "off", showPause: false, showResume: false, busy, error };
  }
}

/** The video recording's buttons: only while the PBX records this call's video (its
 * state is not off); the same wait-for-the-answer logic as audio. Failures are shown by
 * recordingUi's error line (one per call, "video pause failed: …"). */
export function videoRecordingUi(c: CallView): RecordingUi | null {
  if (c.state !== "up" || c.video === "off") return null;
  const busy = c.video_pending !== null;
  if (c.video === "recording") {
    return {
      label: busy ? "Video recording — pausing…" : "Video recording",
      tone: "recording", showPause: true, showResume: false, busy, error: null,
    };
  }
  return {
    label: busy ? "Video paused — resuming…" : "Video recording paused",
    tone: "paused", showPause: false, showResume: true, busy, error: null,
  };
}

export function callTitle(c: CallView): string {
  switch (c.state) {
    case "calling": return `Calling ${c.peer}…`;
    case "ringing": return `Ringing ${c.peer}…`;
    case "incoming": return `Incoming call from ${c.peer}`;
    case "up":
      if (c.hold_local) return `${c.peer} — on hold`;
      if (c.hold_remote) return `${c.peer} — holding you`;
      return c.peer;
  }
}

/** The call timer: from the answer, at `now`. */
export function timer(c: CallView, now: number): string {
  return c.answered_ms === null ? "" : clock(now - c.answered_ms);
}

/** For a consultation call: the held call it would transfer, when both are up. */
export function consultation(c: CallView, calls: CallView[]): CallView | null {
  if (c.consult_of === null || c.state !== "up") return null;
  return calls.find((o) => o.id === c.consult_of && o.state === "up") ?? null;
}

/** The call the screen shows: an incoming one first, then the newest. */
export function activeCall(calls: CallView[]): CallView | null {
  return calls.find((c) => c.state === "incoming") ?? calls[calls.length - 1] ?? null;
}

export function registrationBadge(r: Registration): { text: string; tone: "ok" | "busy" | "bad" | "off" } {
  switch (r.state) {
    case "registered": return { text: `${r.account} — ready`, tone: "ok" };
    case "registering": return { text: `${r.account} — connecting…`, tone: "busy" };
    case "failed": return { text: r.message, tone: "bad" };
    default: return { text: r.message || "Not connected", tone: "off" };
  }
}
