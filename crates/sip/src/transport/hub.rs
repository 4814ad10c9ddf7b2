//! One place to receive from and send to every transport the endpoint listens on.

use super::tcp::{accept_loop, Connections};
use super::{udp, Peer, Transmit, Transport};
use crate::parse::{parse_datagram, Limits, ParseError};
use rsip::SipMessage;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

/// What arrives from the network, already framed and parsed.
#[derive(Debug)]
pub enum Inbound {
    Message { peer: Peer, msg: SipMessage },
    /// Bytes that were not a valid message; kept so a 400 can be built where possible.
    /// `answered`: the transport already replied (and is closing the connection).
    Malformed { peer: Peer, error: ParseError, raw: Vec<u8>, answered: bool },
    /// A keep-alive (double CRLF on streams, a bare CRLF datagram): answer with CRLF.
    Ping { peer: Peer },
}

#[derive(Clone, Debug)]
pub struct TransportConfig {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    pub limits: Limits,
}

pub struct SipTransports {
    udp: Option<Arc<UdpSocket>>,
    udp_addr: Option<SocketAddr>,
    tcp_addr: Option<SocketAddr>,
    conns: Connections,
    inbound_tx: mpsc::Sender<Inbound>,
    inbound_rx: mpsc::Receiver<Inbound>,
    limits: Limits,
    buf: Vec<u8>,
}

impl SipTransports {
    /// Binds the configured sockets. Port 0 picks a free port; `local_addr` tells which.
    pub async fn bind(config: TransportConfig) -> io::Result<Self> {
        let (inbound_tx, inbound_rx) = mpsc::channel(4096);
        let conns = Connections::default();
        let (udp, udp_addr) = match config.udp {
            Some(addr) => {
                let s = udp::bind(addr)?;
                let local = s.local_addr()?;
                (Some(Arc::new(s)), Some(local))
            }
            None => (None, None),
        };
        let tcp_addr = match config.tcp {
            Some(mut addr) => {
                // "Port 0" for both means one free port that both transports share.
                if addr.port() == 0 && config.udp == Some(addr)
                    && let Some(udp) = udp_addr {
                        addr.set_port(udp.port());
                    }
                let listener = TcpListener::bind(addr).await?;
                let local = listener.local_addr()?;
                tokio::spawn(accept_loop(listener, conns.clone(), inbound_tx.clone(), config.limits));
                Some(local)
            }
            None => None,
        };
        Ok(Self {
            udp,
            udp_addr,
            tcp_addr,
            conns,
            inbound_tx,
            inbound_rx,
            limits: config.limits,
            buf: vec![0u8; 65_536],
        })
    }

    pub fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        match transport {
            Transport::Udp => self.udp_addr,
            Transport::Tcp => self.tcp_addr,
            Transport::Tls => None,
        }
    }

    pub fn tcp_connections(&self) -> usize {
        self.conns.count()
    }

    /// The next inbound item from any transport. Cancel-safe: usable in `select!`.
    pub async fn recv(&mut self) -> io::Result<Inbound> {
        loop {
            let udp = self.udp.clone();
            tokio::select! {
                item = self.inbound_rx.recv() => {
                    // The sender half lives in self, so the channel never closes.
                    if let Some(item) = item { return Ok(item) }
                }
                res = async { udp.as_ref().expect("guarded").recv_from(&mut self.buf).await }, if udp.is_some() => {
                    let (n, addr) = match res {
                        Ok(v) => v,
                        // ICMP port unreachable surfaces as ECONNREFUSED on Linux: not ours to fail on.
                        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused || e.kind() == io::ErrorKind::ConnectionReset => continue,
                        Err(e) => return Err(e),
                    };
                    let peer = Peer::udp(addr);
                    let data = &self.buf[..n];
                    if data.iter().all(|b| *b == b'\r' || *b == b'\n') {
                        if data.is_empty() { continue }
                        return Ok(Inbound::Ping { peer });
                    }
                    return Ok(match parse_datagram(data, &self.limits) {
                        Ok(msg) => Inbound::Message { peer, msg },
                        Err(error) => Inbound::Malformed { peer, error, raw: data.to_vec(), answered: false },
                    });
                }
            }
        }
    }

    /// Sends without waiting: UDP datagrams that find the socket buffer full are dropped
    /// (the transaction layer retransmits), TCP bytes are queued on their connection.
    pub fn send(&self, t: Transmit) {
        match t.peer.transport {
            Transport::Udp => {
                if let Some(s) = &self.udp
                    && let Err(e) = s.try_send_to(&t.bytes, t.peer.addr) {
                        tracing::debug!(peer = %t.peer, error = %e, "UDP send failed");
                    }
            }
            Transport::Tcp => self.conns.send(t.peer.addr, t.bytes, &self.inbound_tx, self.limits),
            Transport::Tls => tracing::warn!(peer = %t.peer, "TLS is not configured; message dropped"),
        }
    }
}
