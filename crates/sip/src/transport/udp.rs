//! The UDP socket: large kernel buffers, because a registrar under load receives bursts
//! far larger than the default 208 KiB and every dropped datagram costs a retransmission.

use std::io;
use std::net::SocketAddr;
use tokio::net::UdpSocket;

const SOCKET_BUFFER_BYTES: usize = 8 * 1024 * 1024;

pub(crate) fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}
