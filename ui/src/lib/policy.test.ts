import { describe, expect, it } from "vitest";
import { policyLine, registerHint } from "./policy";
import { moveCodec, settingsError, toggleCodec } from "./settings";
import type { Settings } from "./types";

describe("policy line", () => {
  it("says yes or no and why", () => {
    const u = { extension: "100", name: "Me", role: "user", record_audio: true, record_video: false, recorded: true,
      explain: "recorded (audio), because 100 records audio calls and the tenant's audio recording is on" };
    expect(policyLine(u)).toBe("recorded: yes, because 100 records audio calls and the tenant's audio recording is on");
    expect(policyLine({ ...u, recorded: false, explain: "not recorded, because the tenant's audio recording is off" }))
      .toBe("recorded: no, because the tenant's audio recording is off");
  });
  it("tells where phones register", () => {
    expect(registerHint("192.168.1.5:5060", "hark.local")).toContain("192.168.1.5:5060");
    expect(registerHint(null, "hark.local")).toBe("The PBX is stopped");
  });
});

const base: Settings = {
  mode: "account", account: { server: "10.0.0.1:5060", user: "101", password: "pw", domain: "" },
  embedded: { server: "", user: "100", password: "x", domain: "hark.local" }, codecs: ["pcmu"],
  control: "in-dialog", input_device: "", output_device: "", pbx_port: 0, pbx_autostart: true,
  shortcut: "CommandOrControl+Shift+P", local_recording: false,
};

describe("settings", () => {
  it("validates the account form", () => {
    expect(settingsError(base)).toBeNull();
    expect(settingsError({ ...base, account: { ...base.account, server: "pbx.example" } })).toContain("ADDRESS:PORT");
    expect(settingsError({ ...base, account: { ...base.account, server: "10.0.0.1:70000" } })).toContain("port");
    expect(settingsError({ ...base, account: { ...base.account, password: "" } })).toBe("Enter your password");
    expect(settingsError({ ...base, codecs: [] })).toBe("Choose at least one codec");
    expect(settingsError({ ...base, mode: "embedded", account: { server: "", user: "", password: "", domain: "" } })).toBeNull();
  });
  it("orders codecs", () => {
    expect(toggleCodec(["pcmu"], "opus")).toEqual(["pcmu", "opus"]);
    expect(toggleCodec(["pcmu", "opus"], "pcmu")).toEqual(["opus"]);
    expect(moveCodec(["pcmu", "opus"], "opus", -1)).toEqual(["opus", "pcmu"]);
    expect(moveCodec(["pcmu", "opus"], "pcmu", -1)).toEqual(["pcmu", "opus"]);
  });
});
