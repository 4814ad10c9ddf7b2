//! TCP connections: one reader task per connection frames messages into the shared
//! inbound channel; one writer task per connection drains its queue. Connections are
//! keyed by remote address, which is how `Peer` names them.

use super::hub::Inbound;
use super::{Peer, Transport};
use crate::parse::{error_reply, Limits, ParseError, StreamFramer, StreamItem};
use bytes::Bytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Per-connection outbound queue bound: a peer that does not read is cut off rather than
/// letting us buffer without limit.
const WRITE_QUEUE: usize = 256;
/// A connection that sends nothing for this long is closed (RFC 5626 keep-alives reset it).
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Clone, Default)]
pub(crate) struct Connections {
    // Shared between the accept loop, reader tasks and senders; held only to look up or
    // insert a queue, never across an await.
    writers: Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Bytes>>>>,
}

impl Connections {
    pub(crate) fn count(&self) -> usize {
        self.writers.lock().map(|w| w.len()).unwrap_or(0)
    }

    /// Queues bytes on the connection to `addr`, connecting first if there is none.
    pub(crate) fn send(&self, addr: SocketAddr, bytes: Bytes, inbound: &mpsc::Sender<Inbound>, limits: Limits) {
        let existing = self.writers.lock().ok().and_then(|w| w.get(&addr).cloned());
        match existing {
            Some(tx) => {
                if tx.try_send(bytes).is_err() {
                    tracing::warn!(%addr, "TCP write queue full or closed; message dropped");
                }
            }
            None => {
                let conns = self.clone();
                let inbound = inbound.clone();
                tokio::spawn(async move {
                    match TcpStream::connect(addr).await {
                        Ok(stream) => {
                            let tx = conns.attach(stream, addr, inbound, limits);
                            let _ = tx.try_send(bytes);
                        }
                        Err(e) => tracing::warn!(%addr, error = %e, "TCP connect failed"),
                    }
                });
            }
        }
    }

    pub(crate) fn attach(
        &self,
        stream: TcpStream,
        addr: SocketAddr,
        inbound: mpsc::Sender<Inbound>,
        limits: Limits,
    ) -> mpsc::Sender<Bytes> {
        let _ = stream.set_nodelay(true);
        let (mut reader, mut writer) = stream.into_split();
        let (tx, mut rx) = mpsc::channel::<Bytes>(WRITE_QUEUE);
        if let Ok(mut w) = self.writers.lock() {
            w.insert(addr, tx.clone());
        }
        tokio::spawn(async move {
            while let Some(bytes) = rx.recv().await {
                if writer.write_all(&bytes).await.is_err() {
                    break;
                }
            }
        });
        let conns = self.clone();
        let peer = Peer { transport: Transport::Tcp, addr };
        let own_tx = tx.clone();
        tokio::spawn(async move {
            let mut framer = StreamFramer::new(limits);
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match tokio::time::timeout(IDLE_TIMEOUT, reader.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(n)) => n,
                };
                framer.push(&buf[..n]);
                let mut fatal = false;
                while let Some(item) = framer.next_item() {
                    let msg = match item {
                        StreamItem::Message(msg) => Inbound::Message { peer, msg },
                        StreamItem::Ping => Inbound::Ping { peer },
                        StreamItem::Error { error, raw } => Inbound::Malformed { peer, error, raw, answered: false },
                        StreamItem::Fatal { error, raw } => {
                            // Answer here, then close: the writer flushes what is queued
                            // and ends when the last sender is gone.
                            let code = if matches!(error, ParseError::TooLarge { .. }) { 513 } else { 400 };
                            if let Some(reply) = error_reply(&raw, code, &format!("Bad Request ({error})")) {
                                let _ = own_tx.try_send(Bytes::from(reply));
                            }
                            fatal = true;
                            Inbound::Malformed { peer, error, raw, answered: true }
                        }
                    };
                    if inbound.send(msg).await.is_err() {
                        return;
                    }
                }
                if fatal {
                    tracing::debug!(%addr, "closing a TCP connection that can no longer be framed");
                    break;
                }
            }
            drop(own_tx);
            if let Ok(mut w) = conns.writers.lock() {
                w.remove(&addr);
            }
        });
        tx
    }
}

pub(crate) async fn accept_loop(
    listener: TcpListener,
    conns: Connections,
    inbound: mpsc::Sender<Inbound>,
    limits: Limits,
) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                conns.attach(stream, addr, inbound.clone(), limits);
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
