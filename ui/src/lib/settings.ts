// Settings form logic: validation before it reaches the app, codec order.
import type { Settings } from "./types";

export const ALL_CODECS = ["pcmu", "pcma", "g722", "opus"] as const;
export const CODEC_NAMES: Record<string, string> = {
  pcmu: "G.711 µ-law", pcma: "G.711 A-law", g722: "G.722", opus: "Opus",
};

export function settingsError(s: Settings): string | null {
  if (s.codecs.length === 0) return "Choose at least one codec";
  if (s.mode === "account") {
    if (!/^[^\s:]+:\d{1,5}$/.test(s.account.server.trim()) && !/^\[[0-9a-f:]+\]:\d{1,5}$/i.test(s.account.server.trim())) {
      return "Server must be ADDRESS:PORT, e.g. 192.168.1.10:5060";
    }
    const port = Number(s.account.server.trim().split(":").pop());
    if (!(port > 0 && port < 65536)) return "The server's port must be 1–65535";
    if (!s.account.user.trim()) return "Enter your extension (user)";
    if (!s.account.password) return "Enter your password";
  }
  if (s.pbx_port !== 0 && !(s.pbx_port > 0 && s.pbx_port < 65536)) return "The PBX port must be 1–65535 (0: automatic)";
  return null;
}

export function toggleCodec(codecs: string[], c: string): string[] {
  return codecs.includes(c) ? codecs.filter((x) => x !== c) : [...codecs, c];
}

export function moveCodec(codecs: string[], c: string, delta: -1 | 1): string[] {
  const i = codecs.indexOf(c);
  const j = i + delta;
  if (i < 0 || j < 0 || j >= codecs.length) return codecs;
  const out = [...codecs];
  [out[i], out[j]] = [out[j], out[i]];
  return out;
}

/** The level meter's floor: quieter than this is an empty bar (room noise on most mics). */
export const METER_FLOOR_DBFS = -60;

/** A peak level in dBFS (−96 silence … 0 full scale) as the meter bar's width, 0–100 %,
 * linear in dB from METER_FLOOR_DBFS: what the ear hears as evenly spaced steps. */
export function meterPercent(dbfs: number): number {
  if (!Number.isFinite(dbfs) || dbfs <= METER_FLOOR_DBFS) return 0;
  if (dbfs >= 0) return 100;
  return Math.round((1 - dbfs / METER_FLOOR_DBFS) * 1000) / 10;
}

/** The bar's colour: too quiet to be heard well, fine, or clipping. */
export function meterTone(dbfs: number): "quiet" | "ok" | "loud" {
  if (!Number.isFinite(dbfs) || dbfs < -45) return "quiet";
  return dbfs > -3 ? "loud" : "ok";
}

/** The device the meter opens for a microphone choice: "" is the system default (null),
 * "none" the silent device, which has no level to show. */
export function meterDevice(choice: string): string | null | "none" {
  if (choice === "none") return "none";
  return choice === "" ? null : choice;
}
