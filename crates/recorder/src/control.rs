//! The media-control protocol (SPEC §1): pause/resume requests carried in SIP MESSAGE
//! bodies, the `X-Recording-State` header and the recording-state INFO body.
//!
//! Two request forms:
//! - out of dialog, `application/x-media-control+json`:
//!   `{"operation": "pause-audio-recording", "session_id": "5984923794364"}`;
//! - in dialog, `application/x-media-control`: the operation name as plain text.
//!
//! Parsers are lenient where senders differ in harmless ways (whitespace, key order, a
//! numeric session id, letter case of the operation, a UTF-8 BOM, extra keys) and strict
//! where the request would be ambiguous (missing or non-string operation, trailing
//! garbage, truncated JSON). Every failure is a typed [`ControlError`] whose
//! [`ControlError::reason_phrase`] is safe to put on a SIP status line. Nothing here
//! panics on any input.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

/// Content type of the out-of-dialog JSON request (and of the state INFO).
pub const JSON_CONTENT_TYPE: &str = "application/x-media-control+json";
/// Content type of the in-dialog plain-text request.
pub const TEXT_CONTENT_TYPE: &str = "application/x-media-control";
/// The header that tells phones the recording state.
pub const RECORDING_STATE_HEADER: &str = "X-Recording-State";
/// Bodies larger than this are refused without parsing (a real request is < 200 bytes).
pub const MAX_BODY_LEN: usize = 8 * 1024;
/// Longest session id accepted.
pub const MAX_SESSION_ID_LEN: usize = 128;

/// A media-control operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    PauseAudio,
    ResumeAudio,
    PauseVideo,
    ResumeVideo,
}

impl Operation {
    pub const ALL: [Operation; 4] = [
        Operation::PauseAudio,
        Operation::ResumeAudio,
        Operation::PauseVideo,
        Operation::ResumeVideo,
    ];

    /// The wire name, e.g. `pause-audio-recording`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::PauseAudio => "pause-audio-recording",
            Operation::ResumeAudio => "resume-audio-recording",
            Operation::PauseVideo => "pause-video-recording",
            Operation::ResumeVideo => "resume-video-recording",
        }
    }

    /// From a wire name: surrounding whitespace trimmed, ASCII case ignored.
    pub fn from_wire(name: &str) -> Option<Self> {
        let name = name.trim();
        Operation::ALL
            .into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(name))
    }

    /// True for the two pause operations.
    pub fn is_pause(self) -> bool {
        matches!(self, Operation::PauseAudio | Operation::PauseVideo)
    }

    /// The medium the operation acts on.
    pub fn media(self) -> Media {
        match self {
            Operation::PauseAudio | Operation::ResumeAudio => Media::Audio,
            Operation::PauseVideo | Operation::ResumeVideo => Media::Video,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Operation {
    type Err = ControlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Operation::from_wire(s).ok_or_else(|| ControlError::UnknownOperation(clean(s.trim())))
    }
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Media {
    Audio,
    Video,
}

/// Media-control parse errors. All of them answer SIP 400 ([`ControlError::status_code`])
/// except [`ControlError::UnsupportedContentType`] (415).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// A well-formed body naming an operation that does not exist.
    #[error("unknown operation: {0}")]
    UnknownOperation(String),
    /// Empty, truncated, not JSON, wrong types, missing fields.
    #[error("malformed body: {0}")]
    Malformed(String),
    /// Larger than [`MAX_BODY_LEN`].
    #[error("body too large: {0} bytes")]
    TooLarge(usize),
    /// Neither media-control content type.
    #[error("unsupported content type: {0}")]
    UnsupportedContentType(String),
}

impl ControlError {
    /// The SIP status code to answer with.
    pub fn status_code(&self) -> u16 {
        match self {
            ControlError::UnsupportedContentType(_) => 415,
            _ => 400,
        }
    }

    /// A reason phrase for the SIP status line that says what was wrong, e.g.
    /// `Bad Request (unknown operation: pause-everything)`. Control characters are
    /// removed and the detail is shortened, so the phrase is always a valid header value.
    pub fn reason_phrase(&self) -> String {
        let head = match self {
            ControlError::UnsupportedContentType(_) => "Unsupported Media Type",
            _ => "Bad Request",
        };
        format!("{head} ({})", clean(&self.to_string()))
    }
}

/// Removes control characters (CR, LF, NUL, …) and shortens to 100 characters, so that
/// peer-supplied text can go into a status line or a log line.
fn clean(s: &str) -> String {
    const MAX: usize = 100;
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX)
        .collect();
    if s.chars().count() > MAX {
        out.push('…');
    }
    out
}

fn malformed(detail: impl Into<String>) -> ControlError {
    ControlError::Malformed(clean(&detail.into()))
}

/// UTF-8 text of a body: size-checked, BOM removed.
fn body_text(body: &[u8]) -> Result<&str, ControlError> {
    if body.len() > MAX_BODY_LEN {
        return Err(ControlError::TooLarge(body.len()));
    }
    let text = std::str::from_utf8(body).map_err(|e| malformed(format!("not UTF-8: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(malformed("empty body"));
    }
    Ok(text)
}

fn parse_object(text: &str) -> Result<Map<String, Value>, ControlError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(malformed("not a JSON object")),
        Err(e) => Err(malformed(format!("invalid JSON: {e}"))),
    }
}

/// A session id: a string, or a JSON integer written without quotes (the vendor's
/// example id looks numeric, and some clients send it as a number).
fn session_id_of(map: &Map<String, Value>) -> Result<String, ControlError> {
    let id = match map.get("session_id") {
        None | Some(Value::Null) => return Err(malformed("missing session_id")),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        Some(_) => return Err(malformed("session_id must be a string")),
    };
    if id.is_empty() {
        return Err(malformed("empty session_id"));
    }
    if id.len() > MAX_SESSION_ID_LEN || id.chars().any(char::is_control) {
        return Err(malformed("invalid session_id"));
    }
    Ok(id)
}

fn operation_of(map: &Map<String, Value>) -> Result<Operation, ControlError> {
    match map.get("operation") {
        None | Some(Value::Null) => Err(malformed("missing operation")),
        Some(Value::String(s)) => s.parse(),
        Some(_) => Err(malformed("operation must be a string")),
    }
}

/// An out-of-dialog request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonControl {
    pub operation: Operation,
    pub session_id: String,
}

/// Parses an `application/x-media-control+json` body. Pass the body as cut by the
/// Content-Length: a too-short length yields truncated JSON, which is
/// [`ControlError::Malformed`].
pub fn parse_json_body(body: &[u8]) -> Result<JsonControl, ControlError> {
    let map = parse_object(body_text(body)?)?;
    // Report a missing/invalid session id before an unknown operation: a request that
    // cannot be attributed is malformed, whatever it asks.
    let session_id = session_id_of(&map)?;
    let operation = operation_of(&map)?;
    Ok(JsonControl {
        operation,
        session_id,
    })
}

/// Parses an in-dialog `application/x-media-control` body: the operation name, trimmed.
/// A JSON object with an `operation` key is accepted too (its session id, if any, is
/// ignored: the dialog names the session).
pub fn parse_text_body(body: &[u8]) -> Result<Operation, ControlError> {
    let text = body_text(body)?.trim();
    if text.starts_with('{') {
        return operation_of(&parse_object(text)?);
    }
    text.parse()
}

/// A parsed request of either form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlRequest {
    pub operation: Operation,
    /// The JSON form's session id; None for the in-dialog text form.
    pub session_id: Option<String>,
}

/// Parses a MESSAGE body by its Content-Type (parameters and letter case ignored).
pub fn parse_body(content_type: &str, body: &[u8]) -> Result<ControlRequest, ControlError> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        JSON_CONTENT_TYPE => parse_json_body(body).map(|j| ControlRequest {
            operation: j.operation,
            session_id: Some(j.session_id),
        }),
        TEXT_CONTENT_TYPE => parse_text_body(body).map(|operation| ControlRequest {
            operation,
            session_id: None,
        }),
        _ => Err(ControlError::UnsupportedContentType(clean(content_type))),
    }
}

/// The JSON request body the softphone sends out of dialog (send its true length).
pub fn to_json_body(op: Operation, session_id: &str) -> Vec<u8> {
    let mut map = Map::new();
    map.insert("operation".into(), Value::String(op.as_str().into()));
    map.insert("session_id".into(), Value::String(session_id.into()));
    Value::Object(map).to_string().into_bytes()
}

/// The plain-text request body the softphone sends in dialog.
pub fn to_text_body(op: Operation) -> Vec<u8> {
    op.as_str().as_bytes().to_vec()
}

/// The state of one medium's recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MediaRecording {
    #[default]
    Off,
    Recording,
    Paused,
}

impl MediaRecording {
    /// `recording`, `paused` or `off` (the INFO body's values).
    pub fn as_str(self) -> &'static str {
        match self {
            MediaRecording::Off => "off",
            MediaRecording::Recording => "recording",
            MediaRecording::Paused => "paused",
        }
    }

    pub fn from_wire(s: &str) -> Option<Self> {
        let s = s.trim();
        [
            MediaRecording::Off,
            MediaRecording::Recording,
            MediaRecording::Paused,
        ]
        .into_iter()
        .find(|m| m.as_str().eq_ignore_ascii_case(s))
    }

    pub fn is_on(self) -> bool {
        self != MediaRecording::Off
    }
}

/// The recording state of a call, as phones are told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RecordingState {
    pub audio: MediaRecording,
    pub video: MediaRecording,
}

impl RecordingState {
    pub const OFF: RecordingState = RecordingState {
        audio: MediaRecording::Off,
        video: MediaRecording::Off,
    };

    pub fn get(&self, media: Media) -> MediaRecording {
        match media {
            Media::Audio => self.audio,
            Media::Video => self.video,
        }
    }

    fn get_mut(&mut self, media: Media) -> &mut MediaRecording {
        match media {
            Media::Audio => &mut self.audio,
            Media::Video => &mut self.video,
        }
    }

    /// Applies a pause/resume; returns whether the state changed. Pausing a paused (or
    /// resuming a running) recording is a no-op, and a medium that is off stays off.
    pub fn apply(&mut self, op: Operation) -> bool {
        let slot = self.get_mut(op.media());
        let next = match (*slot, op.is_pause()) {
            (MediaRecording::Recording, true) => MediaRecording::Paused,
            (MediaRecording::Paused, false) => MediaRecording::Recording,
            (s, _) => s,
        };
        let changed = next != *slot;
        *slot = next;
        changed
    }

    /// The `X-Recording-State` value: `off`, or a comma list of `audio` and `video`, each
    /// with `;paused` when paused (e.g. `audio;paused, video`).
    pub fn to_header_value(&self) -> String {
        let mut parts = Vec::with_capacity(2);
        for (name, state) in [("audio", self.audio), ("video", self.video)] {
            match state {
                MediaRecording::Off => {}
                MediaRecording::Recording => parts.push(name.to_owned()),
                MediaRecording::Paused => parts.push(format!("{name};paused")),
            }
        }
        if parts.is_empty() {
            "off".to_owned()
        } else {
            parts.join(", ")
        }
    }

    /// Parses an `X-Recording-State` value. Whitespace and letter case are ignored, as
    /// are unknown media and unknown parameters (a later extension may add them).
    pub fn parse_header_value(value: &str) -> Result<Self, ControlError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(malformed("empty X-Recording-State"));
        }
        if value.eq_ignore_ascii_case("off") {
            return Ok(RecordingState::OFF);
        }
        let mut state = RecordingState::OFF;
        for item in value.split(',') {
            let mut params = item.split(';').map(str::trim);
            let name = params.next().unwrap_or("");
            if name.is_empty() {
                return Err(malformed(format!(
                    "empty item in X-Recording-State: {value}"
                )));
            }
            let paused = params.any(|p| p.eq_ignore_ascii_case("paused"));
            let s = if paused {
                MediaRecording::Paused
            } else {
                MediaRecording::Recording
            };
            if name.eq_ignore_ascii_case("audio") {
                state.audio = s;
            } else if name.eq_ignore_ascii_case("video") {
                state.video = s;
            } else if name.eq_ignore_ascii_case("off") {
                return Err(malformed("\"off\" in a list"));
            }
        }
        Ok(state)
    }

    /// The body of the state INFO:
    /// `{"session_id": "…", "audio": "recording|paused|off", "video": "…"}`.
    pub fn to_info_json(&self, session_id: &str) -> Vec<u8> {
        let mut map = Map::new();
        map.insert("session_id".into(), Value::String(session_id.into()));
        map.insert("audio".into(), Value::String(self.audio.as_str().into()));
        map.insert("video".into(), Value::String(self.video.as_str().into()));
        Value::Object(map).to_string().into_bytes()
    }

    /// Parses a state INFO body. A missing `audio` or `video` key means off.
    pub fn parse_info_json(body: &[u8]) -> Result<StateInfo, ControlError> {
        let map = parse_object(body_text(body)?)?;
        let session_id = session_id_of(&map)?;
        let medium = |key: &str| -> Result<MediaRecording, ControlError> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(MediaRecording::Off),
                Some(Value::String(s)) => MediaRecording::from_wire(s)
                    .ok_or_else(|| malformed(format!("{key}: unknown state {s}"))),
                Some(_) => Err(malformed(format!("{key} must be a string"))),
            }
        };
        Ok(StateInfo {
            session_id,
            state: RecordingState {
                audio: medium("audio")?,
                video: medium("video")?,
            },
        })
    }
}

impl fmt::Display for RecordingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_header_value())
    }
}

/// A parsed state INFO body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateInfo {
    pub session_id: String,
    pub state: RecordingState,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn valid_json_forms() {
        let j = parse_json_body(
            br#"{"operation": "pause-audio-recording", "session_id": "5984923794364"}"#,
        )
        .unwrap();
        assert_eq!(j.operation, Operation::PauseAudio);
        assert_eq!(j.session_id, "5984923794364");

        // Key order, whitespace, newlines, BOM, extra keys.
        let body = "\u{feff} {\n\t\"session_id\" :\"abc-1\" ,\r\n \"x\": [1,2],  \"operation\":\"resume-video-recording\" }\r\n";
        let j = parse_json_body(body.as_bytes()).unwrap();
        assert_eq!(j.operation, Operation::ResumeVideo);
        assert_eq!(j.session_id, "abc-1");

        // A numeric session id, as the vendor's example could be read.
        let j = parse_json_body(
            br#"{ "operation" : "pause-audio-recording", "session_id" : 5984923794364}"#,
        )
        .unwrap();
        assert_eq!(j.session_id, "5984923794364");

        // Operation letter case.
        let j =
            parse_json_body(br#"{"operation":"Pause-Video-Recording","session_id":"s"}"#).unwrap();
        assert_eq!(j.operation, Operation::PauseVideo);
    }

    #[test]
    fn unknown_operation_and_reason_phrase() {
        let e =
            parse_json_body(br#"{"operation":"pause-everything","session_id":"1"}"#).unwrap_err();
        assert_eq!(e, ControlError::UnknownOperation("pause-everything".into()));
        assert_eq!(e.status_code(), 400);
        assert_eq!(
            e.reason_phrase(),
            "Bad Request (unknown operation: pause-everything)"
        );
        assert_eq!(
            parse_text_body(b"  stop-it \r\n").unwrap_err(),
            ControlError::UnknownOperation("stop-it".into())
        );
    }

    #[test]
    fn truncated_json_from_short_content_length() {
        let full = br#"{ "operation" : "pause-audio-recording", "session_id" : "5984923794364"}"#;
        for cut in 0..full.len() {
            let e = parse_json_body(&full[..cut]).unwrap_err();
            assert!(matches!(e, ControlError::Malformed(_)), "cut {cut}: {e:?}");
            assert_eq!(e.status_code(), 400);
            let phrase = e.reason_phrase();
            assert!(
                phrase.starts_with("Bad Request (malformed body: "),
                "{phrase}"
            );
            assert!(!phrase.contains(['\r', '\n']));
        }
        assert!(parse_json_body(full).is_ok());
    }

    #[test]
    fn malformed_bodies() {
        for body in [
            &b""[..],
            b"   \r\n",
            b"[]",
            b"\"pause-audio-recording\"",
            br#"{"session_id":"1"}"#,
            br#"{"operation":"pause-audio-recording"}"#,
            br#"{"operation":"pause-audio-recording","session_id":""}"#,
            br#"{"operation":"pause-audio-recording","session_id":1.5}"#,
            br#"{"operation":"pause-audio-recording","session_id":["1"]}"#,
            br#"{"operation":7,"session_id":"1"}"#,
            br#"{"operation":"pause-audio-recording","session_id":"1"} trailing"#,
            b"\xff\xfe{}",
        ] {
            let e = parse_json_body(body).unwrap_err();
            assert!(matches!(e, ControlError::Malformed(_)), "{body:?}: {e:?}");
        }
        assert_eq!(
            parse_json_body(b"").unwrap_err(),
            ControlError::Malformed("empty body".into())
        );
        assert!(matches!(
            parse_text_body(b""),
            Err(ControlError::Malformed(_))
        ));
    }

    #[test]
    fn huge_body_is_refused() {
        let mut body = br#"{"operation":"pause-audio-recording","session_id":""#.to_vec();
        body.extend(std::iter::repeat_n(b'9', 1 << 20));
        body.extend(br#""}"#);
        let e = parse_json_body(&body).unwrap_err();
        assert_eq!(e, ControlError::TooLarge(body.len()));
        assert_eq!(e.status_code(), 400);
        // Deep nesting within the size limit is an error, not a stack overflow.
        let deep = "[".repeat(MAX_BODY_LEN - 1);
        assert!(matches!(
            parse_json_body(deep.as_bytes()),
            Err(ControlError::Malformed(_))
        ));
    }

    #[test]
    fn reason_phrase_is_one_clean_line() {
        let e = parse_text_body(b"pause\r\nVia: evil\x00").unwrap_err();
        let p = e.reason_phrase();
        assert!(!p.chars().any(char::is_control), "{p:?}");
        let long = "x".repeat(500);
        let p = parse_text_body(long.as_bytes())
            .unwrap_err()
            .reason_phrase();
        assert!(p.len() < 160, "{}", p.len());
    }

    #[test]
    fn text_bodies() {
        for op in Operation::ALL {
            assert_eq!(parse_text_body(&to_text_body(op)).unwrap(), op);
            let padded = format!("\r\n  {op}\r\n");
            assert_eq!(parse_text_body(padded.as_bytes()).unwrap(), op);
        }
        assert_eq!(
            parse_text_body(br#"{"operation":"pause-audio-recording"}"#).unwrap(),
            Operation::PauseAudio
        );
    }

    #[test]
    fn json_round_trip_and_content_types() {
        for op in Operation::ALL {
            let body = to_json_body(op, "id \"7\"");
            let j = parse_json_body(&body).unwrap();
            assert_eq!(j.operation, op);
            assert_eq!(j.session_id, "id \"7\"");
        }
        let r = parse_body(
            "Application/X-Media-Control+JSON; charset=utf-8",
            &to_json_body(Operation::PauseAudio, "9"),
        )
        .unwrap();
        assert_eq!(r.session_id.as_deref(), Some("9"));
        let r = parse_body("application/x-media-control", b"resume-audio-recording").unwrap();
        assert_eq!(
            r,
            ControlRequest {
                operation: Operation::ResumeAudio,
                session_id: None
            }
        );
        let e = parse_body("text/plain", b"pause-audio-recording").unwrap_err();
        assert_eq!(e.status_code(), 415);
        assert!(e.reason_phrase().starts_with("Unsupported Media Type"));
    }

    #[test]
    fn header_values() {
        use MediaRecording::*;
        let cases = [
            (RecordingState::OFF, "off"),
            (
                RecordingState {
                    audio: Recording,
                    video: Off,
                },
                "audio",
            ),
            (
                RecordingState {
                    audio: Paused,
                    video: Off,
                },
                "audio;paused",
            ),
            (
                RecordingState {
                    audio: Paused,
                    video: Recording,
                },
                "audio;paused, video",
            ),
            (
                RecordingState {
                    audio: Recording,
                    video: Paused,
                },
                "audio, video;paused",
            ),
            (
                RecordingState {
                    audio: Off,
                    video: Recording,
                },
                "video",
            ),
        ];
        for (state, text) in cases {
            assert_eq!(state.to_header_value(), text);
            assert_eq!(RecordingState::parse_header_value(text).unwrap(), state);
        }
        assert_eq!(
            RecordingState::parse_header_value(" AUDIO ; Paused ,video;x=1, screen").unwrap(),
            RecordingState {
                audio: Paused,
                video: Recording
            }
        );
        assert!(RecordingState::parse_header_value("").is_err());
        assert!(RecordingState::parse_header_value("audio,,video").is_err());
        assert!(RecordingState::parse_header_value("audio, off").is_err());
    }

    #[test]
    fn info_json_round_trip() {
        use MediaRecording::*;
        for audio in [Off, Recording, Paused] {
            for video in [Off, Recording, Paused] {
                let state = RecordingState { audio, video };
                let body = state.to_info_json("42");
                let info = RecordingState::parse_info_json(&body).unwrap();
                assert_eq!(
                    info,
                    StateInfo {
                        session_id: "42".into(),
                        state
                    }
                );
            }
        }
        let body = br#"{"session_id": "s1", "audio": "recording", "video": "off"}"#;
        let v: Value = serde_json::from_slice(
            &RecordingState::parse_info_json(body)
                .unwrap()
                .state
                .to_info_json("s1"),
        )
        .unwrap();
        assert_eq!(v, serde_json::from_slice::<Value>(body).unwrap());
        let info =
            RecordingState::parse_info_json(br#"{"session_id":"s","audio":"paused"}"#).unwrap();
        assert_eq!(
            info.state,
            RecordingState {
                audio: Paused,
                video: Off
            }
        );
        assert!(RecordingState::parse_info_json(br#"{"session_id":"s","audio":"muted"}"#).is_err());
        assert!(RecordingState::parse_info_json(br#"{"audio":"paused"}"#).is_err());
    }

    #[test]
    fn apply_operations() {
        use MediaRecording::*;
        let mut s = RecordingState {
            audio: Recording,
            video: Off,
        };
        assert!(s.apply(Operation::PauseAudio));
        assert!(
            !s.apply(Operation::PauseAudio),
            "pausing a paused recording is a no-op"
        );
        assert_eq!(s.to_header_value(), "audio;paused");
        assert!(
            !s.apply(Operation::PauseVideo),
            "video is off and stays off"
        );
        assert!(s.apply(Operation::ResumeAudio));
        assert!(!s.apply(Operation::ResumeAudio));
        assert_eq!(
            s,
            RecordingState {
                audio: Recording,
                video: Off
            }
        );
    }

    proptest! {
        #[test]
        fn parsers_never_panic(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_json_body(&body);
            let _ = parse_text_body(&body);
            let _ = RecordingState::parse_info_json(&body);
            if let Ok(s) = std::str::from_utf8(&body) {
                let _ = RecordingState::parse_header_value(s);
                let _ = parse_body(s, &body);
            }
        }

        #[test]
        fn json_like_input_never_panics(
            op in "[a-z-]{0,30}",
            id in proptest::option::of("[ -~]{0,40}"),
            cut in 0usize..120,
        ) {
            let body = match &id {
                Some(id) => format!(r#"{{"operation": "{op}", "session_id": "{id}"}}"#),
                None => format!(r#"{{"operation": "{op}"}}"#),
            };
            let cut = cut.min(body.len());
            if let Err(e) = parse_json_body(&body.as_bytes()[..cut]) {
                let phrase = e.reason_phrase();
                prop_assert!(!phrase.chars().any(char::is_control));
            }
        }

        #[test]
        fn session_ids_round_trip(id in "[!-~][ -~]{0,60}[!-~]") {
            let body = to_json_body(Operation::ResumeAudio, &id);
            let j = parse_json_body(&body).unwrap();
            prop_assert_eq!(j.session_id, id);
        }
    }
}
