// What the Tauri commands return (src-tauri). Plain data: the views' logic is tested
// without Tauri.

export interface Registration {
  state: "off" | "registering" | "registered" | "failed" | "";
  message: string;
  account: string;
  server: string;
}

export interface CallView {
  id: number;
  direction: "outgoing" | "incoming";
  peer: string;
  state: "calling" | "ringing" | "incoming" | "up";
  started_ms: number;
  answered_ms: number | null;
  recording: "off" | "recording" | "paused";
  pending: "pause" | "resume" | null;
  /** The PBX's video recording of this call: off unless the PBX says it records video. */
  video: "off" | "recording" | "paused";
  video_pending: "pause" | "resume" | null;
  control_error: string | null;
  hold_local: boolean;
  hold_remote: boolean;
  muted: boolean;
  session_id: string | null;
  codec: string | null;
  media_error: string | null;
  /** A consultation call: the held call it can take over (attended transfer). */
  consult_of: number | null;
}

export interface HistoryEntry {
  direction: string;
  peer: string;
  started_ms: number;
  duration_s: number;
  answered: boolean;
  reason: string;
}

export interface Snapshot {
  registration: Registration;
  calls: CallView[];
  history: HistoryEntry[];
  last_ended: HistoryEntry | null;
}

export interface PbxStatus {
  enabled: boolean;
  running: boolean;
  listen: string | null;
  address: string | null;
  domain: string;
  note: string | null;
  error: string | null;
  own_extension: string;
}

export interface UserView {
  extension: string;
  name: string;
  role: string;
  record_audio: boolean;
  record_video: boolean;
  recorded: boolean;
  explain: string;
}

export interface Switches {
  tenant: string;
  domain: string;
  audio_recording: boolean;
  video_recording: boolean;
  record_between_external_numbers: boolean;
}

export interface Marker {
  offset_ms: number;
  event: string;
  source: string;
}

export interface LibraryItem {
  id: string;
  source: "pbx" | "local";
  parties: string[];
  started_ms: number;
  duration_ms: number | null;
  status: string;
  markers: Marker[];
  has_cdr: boolean;
  file: string;
  error: string | null;
}

export interface Waveform {
  duration_ms: number;
  sample_rate: number;
  channels: number;
  peaks: number[];
}

export interface PlayerStatus {
  id: string | null;
  playing: boolean;
  position_ms: number;
  duration_ms: number;
  device: boolean;
  message: string | null;
}

export interface AccountSettings {
  server: string;
  user: string;
  password: string;
  domain: string;
}

export interface Settings {
  mode: "embedded" | "account";
  account: AccountSettings;
  embedded: AccountSettings;
  codecs: string[];
  control: "in-dialog" | "out-of-dialog" | "dtmf";
  input_device: string;
  output_device: string;
  pbx_port: number;
  pbx_autostart: boolean;
  shortcut: string;
  local_recording: boolean;
}

export interface AppInfo {
  mode: "embedded" | "account";
  first_launch: boolean;
  data_dir: string;
  version: string;
}
