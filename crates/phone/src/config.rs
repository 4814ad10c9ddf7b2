//! What a phone is configured with: the SIP account, how recording controls are sent,
//! which codecs are offered, and the timers of registration.

use hark_media::codec::AudioCodec;
use hark_sip::transport::Transport;
use std::net::SocketAddr;
use std::time::Duration;

/// One SIP account: where the registrar/proxy is and who we are there.
#[derive(Clone, Debug)]
pub struct Account {
    /// The registrar and outbound proxy every request goes to.
    pub server: SocketAddr,
    /// The user part (extension) of our address of record.
    pub user: String,
    pub password: String,
    /// The host part of our address of record; the server's IP when not given.
    pub domain: String,
    /// UDP or TCP towards the server.
    pub transport: Transport,
}

impl Account {
    /// Our address of record, `sip:user@domain`.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.user, self.domain)
    }
}

/// How pause/resume of the PBX's recording is asked for (SPEC §1, §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ControlMode {
    /// MESSAGE in the call's dialog, `application/x-media-control`, the operation as text.
    #[default]
    InDialog,
    /// MESSAGE outside the dialog, `application/x-media-control+json`, naming the
    /// session by the X-Session-Id the PBX sent.
    OutOfDialog,
    /// The feature codes `*48` (pause) and `*49` (resume) as DTMF.
    Dtmf,
}

impl ControlMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ControlMode::InDialog => "in-dialog",
            ControlMode::OutOfDialog => "out-of-dialog",
            ControlMode::Dtmf => "dtmf",
        }
    }
}

/// How DTMF digits leave the phone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DtmfMode {
    /// RFC 4733 telephone-events when the peer accepted them, else SIP INFO.
    #[default]
    Auto,
    Rfc4733,
    /// SIP INFO with `application/dtmf-relay`.
    Info,
}

/// Registration timing.
#[derive(Clone, Copy, Debug)]
pub struct RegistrationTiming {
    /// The Expires we ask for.
    pub expires: u32,
    /// The first retry after a failure; doubled on each further failure.
    pub retry_min: Duration,
    /// The longest wait between retries.
    pub retry_max: Duration,
}

impl Default for RegistrationTiming {
    fn default() -> Self {
        Self { expires: 600, retry_min: Duration::from_secs(2), retry_max: Duration::from_secs(120) }
    }
}

/// Everything the engine needs besides its inputs.
#[derive(Clone, Debug)]
pub struct PhoneConfig {
    pub account: Account,
    /// Whether the phone registers at all (a direct call to another phone needs not).
    pub register: bool,
    pub registration: RegistrationTiming,
    pub control: ControlMode,
    pub dtmf: DtmfMode,
    /// Codecs offered and accepted, in order of preference.
    pub codecs: Vec<AudioCodec>,
    /// The RTP payload type offered for Opus and for telephone-events.
    pub opus_pt: u8,
    pub telephone_event_pt: u8,
    /// Sent as User-Agent.
    pub user_agent: String,
    /// Hang up a call whose audio stopped coming for this long while both sides send
    /// (not on hold): the other end or the PBX is gone. None: never.
    pub rtp_timeout: Option<std::time::Duration>,
}

impl PhoneConfig {
    pub fn new(account: Account) -> Self {
        Self {
            account,
            register: true,
            registration: RegistrationTiming::default(),
            control: ControlMode::default(),
            dtmf: DtmfMode::default(),
            codecs: vec![AudioCodec::Pcmu, AudioCodec::Pcma, AudioCodec::G722, AudioCodec::Opus],
            opus_pt: 111,
            telephone_event_pt: 101,
            user_agent: format!("Hark phone {}", env!("CARGO_PKG_VERSION")),
            // Linphone's default; longer than any silence suppression leaves the line quiet.
            rtp_timeout: Some(std::time::Duration::from_secs(30)),
        }
    }
}
