//! Read-only views of media sections: kind, port, address, payload formats, direction,
//! RTCP port.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ::sdp::description::common::{Attribute, ConnectionInformation};
use ::sdp::description::media::MediaDescription;

use super::codecs::SupportedCodec;
use super::error::SdpError;

/// The media type of an m= line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Video,
    /// text, application, image (T.38), message…
    Other(String),
}

impl MediaKind {
    fn from_name(name: &str) -> Self {
        match name {
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            other => MediaKind::Other(other.to_owned()),
        }
    }
}

/// RFC 3264 stream direction, from the sender's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub fn from_attribute(key: &str) -> Option<Self> {
        Some(match key {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Whether the description's owner sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the description's owner receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The direction an answer mirrors: sendonly ↔ recvonly.
    pub fn reversed(self) -> Self {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One RTP payload format of an m= line, with its rtpmap (or the RFC 3551 static
/// default) and fmtp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadFormat {
    pub pt: u8,
    /// Encoding name as written (e.g. "opus", "PCMU"); empty for a dynamic type
    /// without rtpmap.
    pub name: String,
    /// RTP clock rate (8000 for G722, per RFC 3551's historical quirk); 0 if unknown.
    pub clock_rate: u32,
    /// Channels (1 unless the rtpmap says otherwise).
    pub channels: u16,
    pub fmtp: Option<String>,
}

impl PayloadFormat {
    /// The codec this format is, among those the PBX handles.
    pub fn codec(&self) -> Option<SupportedCodec> {
        SupportedCodec::classify(self)
    }

    fn static_default(pt: u8) -> Self {
        let (name, rate) = match pt {
            0 => ("PCMU", 8000),
            3 => ("GSM", 8000),
            4 => ("G723", 8000),
            8 => ("PCMA", 8000),
            9 => ("G722", 8000),
            13 => ("CN", 8000),
            18 => ("G729", 8000),
            26 => ("JPEG", 90000),
            31 => ("H261", 90000),
            34 => ("H263", 90000),
            _ => ("", 0),
        };
        PayloadFormat {
            pt,
            name: name.to_owned(),
            clock_rate: rate,
            channels: 1,
            fmtp: None,
        }
    }
}

/// A snapshot of one m= section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSection {
    /// Position among the description's m= lines (0-based).
    pub index: usize,
    pub kind: MediaKind,
    /// 0 when the stream is rejected or disabled.
    pub port: u16,
    /// Transport protocol as written, e.g. "RTP/AVP".
    pub proto: String,
    /// Effective connection address (media-level c=, else session-level c=).
    pub connection: Option<IpAddr>,
    /// Payload formats in preference order (RTP transports only).
    pub formats: Vec<PayloadFormat>,
    /// Effective direction (media-level attribute, else session-level, else sendrecv).
    pub direction: Direction,
    /// RTCP port: a=rtcp, else port + 1 (None when port is 0).
    pub rtcp_port: Option<u16>,
    /// Address given in a=rtcp, if any.
    pub rtcp_connection: Option<IpAddr>,
    /// The section offers or accepts RTP/RTCP multiplexing (RFC 5761).
    pub rtcp_mux: bool,
    pub ptime: Option<u32>,
}

impl MediaSection {
    pub(crate) fn from_desc(
        index: usize,
        m: &MediaDescription,
        session_conn: Option<&ConnectionInformation>,
        session_attrs: &[Attribute],
    ) -> Result<Self, SdpError> {
        let name = &m.media_name;
        let port = u16::try_from(name.port.value)
            .map_err(|_| SdpError::malformed(format!("bad port in m={}", name.media)))?;
        let proto = name.protos.join("/");
        let kind = MediaKind::from_name(&name.media);
        let conn_info = m.connection_information.as_ref().or(session_conn);
        let connection = match conn_info {
            Some(c) => Some(parse_connection(c)?),
            None => None,
        };
        if connection.is_none() && port != 0 {
            return Err(SdpError::malformed(format!(
                "no c= line for m={}",
                name.media
            )));
        }
        let is_rtp = name.protos.iter().any(|p| p == "RTP");
        let formats = if is_rtp {
            parse_formats(m)?
        } else {
            Vec::new()
        };
        let direction = direction_of(&m.attributes)
            .or_else(|| direction_of(session_attrs))
            .unwrap_or_default();
        let (rtcp_port, rtcp_connection) = match m.attribute("rtcp") {
            Some(Some(v)) if port != 0 => {
                let (p, a) = parse_rtcp_attr(v)?;
                (Some(p), a)
            }
            Some(_) | None => (if port != 0 { port.checked_add(1) } else { None }, None),
        };
        let ptime = m
            .attribute("ptime")
            .flatten()
            .and_then(|v| v.trim().parse::<u32>().ok());
        Ok(MediaSection {
            index,
            kind,
            port,
            proto,
            connection,
            formats,
            direction,
            rtcp_port,
            rtcp_connection,
            rtcp_mux: m.has_attribute("rtcp-mux"),
            ptime,
        })
    }

    /// Port 0: rejected or disabled.
    pub fn is_rejected(&self) -> bool {
        self.port == 0
    }

    /// An RTP transport without security (RTP/AVP or RTP/AVPF): what the relay carries.
    pub fn is_plain_rtp(&self) -> bool {
        self.proto == "RTP/AVP" || self.proto == "RTP/AVPF"
    }

    /// The connection address is 0.0.0.0 or :: (RFC 2543-style hold).
    pub fn is_unspecified(&self) -> bool {
        self.connection.is_some_and(|ip| ip.is_unspecified())
    }

    /// Where to send RTP: None when the port is 0 or the address is unspecified (hold).
    pub fn rtp_addr(&self) -> Option<SocketAddr> {
        let ip = self.connection?;
        if self.port == 0 || ip.is_unspecified() {
            return None;
        }
        Some(SocketAddr::new(ip, self.port))
    }

    /// Where to send RTCP: a=rtcp (with its own address if given), else RTP port + 1.
    pub fn rtcp_addr(&self) -> Option<SocketAddr> {
        let rtp = self.rtp_addr()?;
        let ip = self.rtcp_connection.unwrap_or(rtp.ip());
        if ip.is_unspecified() {
            return None;
        }
        Some(SocketAddr::new(ip, self.rtcp_port?))
    }

    /// The format with payload type `pt`.
    pub fn format(&self, pt: u8) -> Option<&PayloadFormat> {
        self.formats.iter().find(|f| f.pt == pt)
    }

    /// The first telephone-event (RFC 4733) payload type, preferring one whose clock
    /// rate is `rate`.
    pub fn telephone_event_pt(&self, rate: u32) -> Option<u8> {
        let events = || {
            self.formats
                .iter()
                .filter(|f| f.codec() == Some(SupportedCodec::TelephoneEvent))
        };
        events()
            .find(|f| f.clock_rate == rate)
            .or_else(|| events().next())
            .map(|f| f.pt)
    }
}

fn direction_of(attrs: &[Attribute]) -> Option<Direction> {
    attrs
        .iter()
        .rev()
        .find_map(|a| Direction::from_attribute(&a.key))
}

/// Parses the address of a c= line (dropping a multicast /ttl suffix). Names (FQDNs are
/// legal SDP) are refused as unsupported rather than malformed.
pub(crate) fn parse_connection(c: &ConnectionInformation) -> Result<IpAddr, SdpError> {
    let Some(addr) = &c.address else {
        return Err(SdpError::malformed("c= line without address"));
    };
    let text = addr.address.split('/').next().unwrap_or_default();
    let ip: IpAddr = match text.parse() {
        Ok(ip) => ip,
        Err(_) => {
            return Err(SdpError::Unsupported(
                "c= address is not an IP address".to_owned(),
            ));
        }
    };
    match (c.address_type.as_str(), ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Ok(ip),
        _ => Err(SdpError::malformed("c= address does not match its type")),
    }
}

fn parse_formats(m: &MediaDescription) -> Result<Vec<PayloadFormat>, SdpError> {
    let mut formats = Vec::with_capacity(m.media_name.formats.len());
    for f in &m.media_name.formats {
        let pt = parse_pt(f)?;
        if formats.iter().any(|x: &PayloadFormat| x.pt == pt) {
            continue;
        }
        formats.push(PayloadFormat::static_default(pt));
    }
    for a in &m.attributes {
        match (a.key.as_str(), a.value.as_deref()) {
            ("rtpmap", Some(v)) => {
                let (pt, rest) = split_pt(v, "rtpmap")?;
                let (name, rate, channels) = parse_rtpmap_value(rest)?;
                if let Some(f) = formats.iter_mut().find(|f| f.pt == pt) {
                    f.name = name.to_owned();
                    f.clock_rate = rate;
                    f.channels = channels;
                }
            }
            ("fmtp", Some(v)) => {
                let (pt, rest) = split_pt(v, "fmtp")?;
                if let Some(f) = formats.iter_mut().find(|f| f.pt == pt) {
                    f.fmtp = Some(rest.trim().to_owned());
                }
            }
            ("rtpmap" | "fmtp", None) => {
                return Err(SdpError::malformed(format!("a={} without value", a.key)));
            }
            _ => {}
        }
    }
    Ok(formats)
}

fn parse_pt(s: &str) -> Result<u8, SdpError> {
    match s.parse::<u8>() {
        Ok(pt) if pt <= 127 => Ok(pt),
        _ => Err(SdpError::malformed(format!("bad payload type {s}"))),
    }
}

/// Splits `"<pt> <rest>"`.
fn split_pt<'a>(v: &'a str, what: &str) -> Result<(u8, &'a str), SdpError> {
    let v = v.trim_start();
    let (pt, rest) = v.split_once([' ', '\t']).unwrap_or((v, ""));
    let pt = pt
        .parse::<u8>()
        .ok()
        .filter(|pt| *pt <= 127)
        .ok_or_else(|| SdpError::malformed(format!("bad payload type in a={what}")))?;
    Ok((pt, rest))
}

/// Parses `"<name>/<rate>[/<channels>]"`.
fn parse_rtpmap_value(v: &str) -> Result<(&str, u32, u16), SdpError> {
    let bad = || SdpError::malformed("bad a=rtpmap");
    let mut parts = v.trim().split('/');
    let name = parts.next().filter(|n| !n.is_empty()).ok_or_else(bad)?;
    let rate = parts
        .next()
        .and_then(|r| r.trim().parse::<u32>().ok())
        .ok_or_else(bad)?;
    let channels = match parts.next() {
        Some(c) => c.trim().parse::<u16>().map_err(|_| bad())?,
        None => 1,
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok((name, rate, channels))
}

/// Parses `a=rtcp:<port> [IN IP4 <addr>]`.
fn parse_rtcp_attr(v: &str) -> Result<(u16, Option<IpAddr>), SdpError> {
    let mut f = v.split_whitespace();
    let port = f
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|p| *p != 0)
        .ok_or_else(|| SdpError::malformed("bad a=rtcp port"))?;
    let addr = match (f.next(), f.next(), f.next()) {
        (Some("IN"), Some(t), Some(a)) => {
            let c = ConnectionInformation {
                network_type: "IN".to_owned(),
                address_type: t.to_owned(),
                address: Some(::sdp::description::common::Address {
                    address: a.to_owned(),
                    ttl: None,
                    range: None,
                }),
            };
            Some(parse_connection(&c)?)
        }
        (None, _, _) => None,
        _ => return Err(SdpError::malformed("bad a=rtcp address")),
    };
    Ok((port, addr))
}

/// The unspecified address of `ip`'s family.
pub(crate) fn unspecified_like(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    }
}
