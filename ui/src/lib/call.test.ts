import { describe, expect, it } from "vitest";
import { activeCall, callTitle, consultation, recordingUi, registrationBadge, timer, videoRecordingUi } from "./call";
import type { CallView } from "./types";

function call(over: Partial<CallView> = {}): CallView {
  return {
    id: 1, direction: "outgoing", peer: "102", state: "up", started_ms: 0, answered_ms: 1_000,
    recording: "recording", pending: null, video: "off", video_pending: null, control_error: null, hold_local: false, hold_remote: false,
    muted: false, session_id: "s", codec: "Pcmu", media_error: null, consult_of: null, ...over,
  };
}

describe("recording indicator", () => {
  it("offers Pause while recording and Resume while paused", () => {
    const r = recordingUi(call());
    expect(r).toMatchObject({ label: "Recording", tone: "recording", showPause: true, showResume: false, busy: false });
    const p = recordingUi(call({ recording: "paused" }));
    expect(p).toMatchObject({ label: "Recording paused", showPause: false, showResume: true });
  });
  it("waits for the PBX's answer: the buttons are busy, the state unchanged", () => {
    const r = recordingUi(call({ pending: "pause" }));
    expect(r.busy).toBe(true);
    expect(r.tone).toBe("recording");
    expect(r.label).toContain("pausing");
  });
  it("shows a failure, never swallows it", () => {
    const r = recordingUi(call({ control_error: "pause failed: 403 Forbidden" }));
    expect(r.error).toBe("pause failed: 403 Forbidden");
    expect(r.showPause).toBe(true);
  });
  it("says so when the call is not recorded, and shows nothing before the answer", () => {
    expect(recordingUi(call({ recording: "off" })).label).toBe("Not recorded");
    expect(recordingUi(call({ state: "ringing" })).label).toBe("");
  });
});

describe("video recording buttons", () => {
  it("are there only when the PBX records this call's video", () => {
    expect(videoRecordingUi(call())).toBeNull();
    expect(videoRecordingUi(call({ video: "recording", state: "ringing" }))).toBeNull();
    expect(videoRecordingUi(call({ video: "recording" }))).toMatchObject({ showPause: true, showResume: false, busy: false, tone: "recording" });
    expect(videoRecordingUi(call({ video: "paused" }))).toMatchObject({ showPause: false, showResume: true, tone: "paused" });
  });
  it("wait for the PBX's answer to a video pause, independently of audio", () => {
    const v = videoRecordingUi(call({ video: "recording", video_pending: "pause" }));
    expect(v?.busy).toBe(true);
    expect(v?.label).toContain("pausing");
    expect(recordingUi(call({ video: "recording", video_pending: "pause" })).busy).toBe(false);
    expect(videoRecordingUi(call({ video: "recording", pending: "pause" }))?.busy).toBe(false);
  });
  it("leave a video failure to the call's one error line", () => {
    const c = call({ video: "recording", control_error: "video pause failed: 488 Not Acceptable Here" });
    expect(recordingUi(c).error).toContain("video pause failed");
    expect(videoRecordingUi(c)?.showPause).toBe(true);
  });
});

describe("call screen", () => {
  it("titles each state", () => {
    expect(callTitle(call({ state: "calling" }))).toBe("Calling 102…");
    expect(callTitle(call({ state: "incoming", peer: "101" }))).toBe("Incoming call from 101");
    expect(callTitle(call({ hold_local: true }))).toContain("on hold");
    expect(callTitle(call())).toBe("102");
  });
  it("times from the answer", () => {
    expect(timer(call({ answered_ms: 1_000 }), 66_000)).toBe("1:05");
    expect(timer(call({ answered_ms: null, state: "ringing" }), 66_000)).toBe("");
  });
  it("puts an incoming call first", () => {
    const a = call({ id: 1 });
    const b = call({ id: 2, state: "incoming" });
    expect(activeCall([a, b])?.id).toBe(2);
    expect(activeCall([a])?.id).toBe(1);
    expect(activeCall([])).toBeNull();
  });
  it("shows registration failures as they are", () => {
    const bad = registrationBadge({ state: "failed", message: "registration refused: wrong user or password (403 Forbidden)", account: "100@x", server: "" });
    expect(bad.tone).toBe("bad");
    expect(bad.text).toContain("wrong user or password");
    expect(registrationBadge({ state: "registered", message: "", account: "100@hark.local", server: "" }).text).toBe("100@hark.local — ready");
  });
});

describe("attended transfer", () => {
  it("offers to complete only on an answered consultation whose held call is still up", () => {
    const held = call({ id: 1, peer: "102", hold_local: true });
    const consult = call({ id: 2, peer: "103", consult_of: 1 });
    expect(consultation(consult, [held, consult])?.peer).toBe("102");
    expect(consultation(call({ id: 2, consult_of: 1, state: "ringing" }), [held])).toBeNull();
    expect(consultation(consult, [consult])).toBeNull();
    expect(consultation(held, [held, consult])).toBeNull();
  });
});
