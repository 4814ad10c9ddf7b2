import { describe, expect, it } from "vitest";
import { meterDevice, meterPercent, meterTone, moveCodec, settingsError, toggleCodec } from "./settings";
import type { Settings } from "./types";

describe("level meter", () => {
  it("maps dBFS to the bar linearly from the floor to full scale", () => {
    expect(meterPercent(0)).toBe(100);
    expect(meterPercent(-30)).toBe(50);
    expect(meterPercent(-6)).toBe(90);
    expect(meterPercent(-60)).toBe(0);
  });
  it("clamps silence, overs and nonsense", () => {
    expect(meterPercent(-96)).toBe(0);
    expect(meterPercent(3)).toBe(100);
    expect(meterPercent(Number.NaN)).toBe(0);
    expect(meterPercent(Number.NEGATIVE_INFINITY)).toBe(0);
  });
  it("colours quiet, fine and clipping levels", () => {
    expect(meterTone(-70)).toBe("quiet");
    expect(meterTone(-20)).toBe("ok");
    expect(meterTone(-1)).toBe("loud");
    expect(meterTone(Number.NaN)).toBe("quiet");
  });
  it("opens the default device for the default choice and nothing for None", () => {
    expect(meterDevice("")).toBeNull();
    expect(meterDevice("none")).toBe("none");
    expect(meterDevice("USB Headset")).toBe("USB Headset");
  });
});

describe("settings form", () => {
  const base: Settings = {
    mode: "account", account: { server: "10.0.0.1:5060", user: "101", password: "pw", domain: "" },
    embedded: { server: "", user: "", password: "", domain: "" }, codecs: ["pcmu"], control: "in-dialog",
    input_device: "", output_device: "", pbx_port: 0, pbx_autostart: true, shortcut: "", local_recording: false,
  };
  it("asks for ADDRESS:PORT, a user and a password in account mode", () => {
    expect(settingsError(base)).toBeNull();
    expect(settingsError({ ...base, account: { ...base.account, server: "pbx.example" } })).toContain("ADDRESS:PORT");
    expect(settingsError({ ...base, account: { ...base.account, server: "10.0.0.1:70000" } })).toContain("1–65535");
    expect(settingsError({ ...base, account: { ...base.account, password: "" } })).toContain("password");
    expect(settingsError({ ...base, codecs: [] })).toContain("codec");
  });
  it("toggles and reorders codecs", () => {
    expect(toggleCodec(["pcmu"], "opus")).toEqual(["pcmu", "opus"]);
    expect(toggleCodec(["pcmu", "opus"], "pcmu")).toEqual(["opus"]);
    expect(moveCodec(["pcmu", "opus"], "opus", -1)).toEqual(["opus", "pcmu"]);
    expect(moveCodec(["pcmu", "opus"], "pcmu", -1)).toEqual(["pcmu", "opus"]);
  });
});
