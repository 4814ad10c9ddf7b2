//! Anchoring: rewrite a description so that all media goes through the relay.

use std::net::IpAddr;

use ::sdp::description::common::{Address, ConnectionInformation};
use ::sdp::description::session::SessionDescription;

use super::error::SdpError;
use super::media::{parse_connection, unspecified_like};

/// Attributes dropped at session and media level: ICE (the relay is the endpoint now),
/// SRTP keying (SDES, DTLS, ZRTP, RFC 5939 capability negotiation — the PBX does not
/// terminate SRTP yet), BUNDLE and RTCP multiplexing (the relay has one port pair per
/// stream, RTCP on port + 1).
const DROPPED: &[&str] = &[
    "candidate",
    "end-of-candidates",
    "remote-candidates",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-lite",
    "ice-mismatch",
    "ice-pacing",
    "crypto",
    "fingerprint",
    "setup",
    "tls-id",
    "zrtp-hash",
    "tcap",
    "pcfg",
    "acap",
    "group",
    "rtcp-mux",
    "rtcp-mux-only",
];

fn conn(ip: IpAddr) -> ConnectionInformation {
    ConnectionInformation {
        network_type: "IN".to_owned(),
        address_type: if ip.is_ipv4() { "IP4" } else { "IP6" }.to_owned(),
        address: Some(Address {
            address: ip.to_string(),
            ttl: None,
            range: None,
        }),
    }
}

/// See [`super::Sdp::anchor`].
pub(crate) fn anchor(
    desc: &mut SessionDescription,
    ip: IpAddr,
    ports: &[u16],
) -> Result<(), SdpError> {
    let active = desc
        .media_descriptions
        .iter()
        .filter(|m| m.media_name.port.value != 0)
        .count();
    if ports.len() < active {
        return Err(SdpError::NotEnoughPorts {
            needed: active,
            given: ports.len(),
        });
    }
    // Which active sections were on hold by address (0.0.0.0), before c= is rewritten.
    let session_conn = desc.connection_information.clone();
    let mut held = Vec::with_capacity(desc.media_descriptions.len());
    for m in &desc.media_descriptions {
        let c = m.connection_information.as_ref().or(session_conn.as_ref());
        let unspecified = match c {
            Some(c) => parse_connection(c)?.is_unspecified(),
            None => false,
        };
        held.push(unspecified);
    }

    let o = &mut desc.origin;
    o.session_version = o.session_version.wrapping_add(1);
    o.network_type = "IN".to_owned();
    o.address_type = if ip.is_ipv4() { "IP4" } else { "IP6" }.to_owned();
    o.unicast_address = ip.to_string();
    desc.connection_information = Some(conn(ip));
    desc.attributes
        .retain(|a| !DROPPED.contains(&a.key.as_str()));

    let mut next_port = ports.iter().copied();
    for (m, held) in desc.media_descriptions.iter_mut().zip(held) {
        m.attributes.retain(|a| !DROPPED.contains(&a.key.as_str()));
        m.media_name.port.range = None;
        if m.media_name.port.value == 0 {
            m.connection_information = None;
            continue;
        }
        let port = next_port.next().unwrap_or_default();
        m.media_name.port.value = port as isize;
        m.connection_information = if held {
            Some(conn(unspecified_like(ip)))
        } else {
            None
        };
        for a in m.attributes.iter_mut() {
            if a.key == "rtcp" {
                a.value = Some(port.wrapping_add(1).to_string());
            }
        }
    }
    Ok(())
}
