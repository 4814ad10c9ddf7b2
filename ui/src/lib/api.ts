// The UI's only way out: Tauri commands (src-tauri) and their events. No SIP here.
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type {
  AppInfo, LibraryItem, PbxStatus, PlayerStatus, Settings, Snapshot, Switches, UserView, Waveform,
} from "./types";

/** Tauri rejects with the command's error string; make it an Error with that message. */
async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    throw new Error(typeof e === "string" ? e : e instanceof Error ? e.message : JSON.stringify(e));
  }
}

export const api = {
  appInfo: () => call<AppInfo>("app_info"),
  phoneState: () => call<Snapshot>("phone_state"),
  dial: (target: string) => call<number>("dial", { target }),
  answer: (callId: number) => call<void>("answer", { call: callId }),
  reject: (callId: number) => call<void>("reject", { call: callId }),
  hangup: (callId: number) => call<void>("hangup", { call: callId }),
  hold: (callId: number, on: boolean) => call<void>("hold", { call: callId, on }),
  dtmf: (callId: number, digits: string) => call<void>("dtmf", { call: callId, digits }),
  transfer: (callId: number, target: string) => call<void>("transfer", { call: callId, target }),
  consultTransfer: (callId: number, target: string) => call<number>("consult_transfer", { call: callId, target }),
  completeTransfer: (callId: number) => call<void>("complete_transfer", { call: callId }),
  setRecording: (callId: number, pause: boolean, video = false) => call<void>("set_recording", { call: callId, pause, video }),
  setMute: (callId: number, on: boolean) => call<void>("set_mute", { call: callId, on }),
  extensions: () => call<{ extension: string; name: string }[]>("extensions"),
  pbxStatus: () => call<PbxStatus>("pbx_status"),
  pbxStart: () => call<void>("pbx_start"),
  pbxStop: () => call<void>("pbx_stop"),
  pbxUsers: () => call<UserView[]>("pbx_users"),
  pbxSetUser: (ext: string, audio: boolean | null, video: boolean | null) =>
    call<void>("pbx_set_user", { ext, audio, video }),
  pbxAddUser: (ext: string, name: string, password: string) => call<void>("pbx_add_user", { ext, name, password }),
  pbxSwitches: () => call<Switches>("pbx_switches"),
  pbxSetCompany: (audio: boolean | null, video: boolean | null) => call<void>("pbx_set_company", { audio, video }),
  pbxSetSystem: (on: boolean) => call<void>("pbx_set_system", { recordBetweenExternalNumbers: on }),
  recordings: () => call<LibraryItem[]>("recordings_list"),
  waveform: (id: string) => call<Waveform>("recording_waveform", { id }),
  cdr: (id: string) => call<Record<string, unknown>>("recording_cdr", { id }),
  exportRecording: (id: string) => call<string>("recording_export", { id }),
  deleteRecording: (id: string) => call<void>("recording_delete", { id }),
  playerLoad: (id: string) => call<PlayerStatus>("player_load", { id }),
  playerPlay: () => call<PlayerStatus>("player_play"),
  playerPause: () => call<PlayerStatus>("player_pause"),
  playerSeek: (ms: number) => call<PlayerStatus>("player_seek", { ms: Math.max(0, Math.round(ms)) }),
  playerStatus: () => call<PlayerStatus>("player_status"),
  settings: () => call<Settings>("settings_get"),
  saveSettings: (settings: Settings) => call<void>("settings_save", { settings }),
  audioDevices: () => call<{ inputs: string[]; outputs: string[] }>("audio_devices"),
  /** Opens the microphone's level meter (null: the system default); closes any other. */
  meterStart: (device: string | null) => call<void>("meter_start", { device }),
  /** The peak level since the last read, in dBFS; an error once the device failed. */
  meterLevel: () => call<{ dbfs: number; lost: boolean }>("meter_level"),
  meterStop: () => call<void>("meter_stop"),
  /** A short tone on the speaker ("" the system default). */
  testTone: (device: string) => call<void>("test_tone", { device }),
  speakerLevel: () => call<number>("speaker_level"),
  quit: () => call<void>("quit"),
};

export function onPhoneState(f: (s: Snapshot) => void): Promise<UnlistenFn> {
  return listen<Snapshot>("phone-state", (e) => f(e.payload));
}

export function onPbxState(f: (s: PbxStatus) => void): Promise<UnlistenFn> {
  return listen<PbxStatus>("pbx-state", (e) => f(e.payload));
}
