//! Single instance per data directory: the first app listens on DATA/desktop.sock; a
//! second launch connects, asks it to show its window, and exits.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

pub enum Claim {
    Ours(UnixListener),
    Other,
}

pub fn claim(data: &Path) -> Claim {
    let path = data.join("desktop.sock");
    if let Ok(mut s) = UnixStream::connect(&path) {
        let _ = s.write_all(b"show\n");
        return Claim::Other;
    }
    // Nobody answers: a stale socket from a crash.
    let _ = std::fs::remove_file(&path);
    match UnixListener::bind(&path) {
        Ok(l) => Claim::Ours(l),
        Err(e) => {
            eprintln!("warning: cannot claim {}: {e}; a second launch will not find this one", path.display());
            // An unbound listener on an abstract-free temp path keeps the types simple.
            let tmp = std::env::temp_dir().join(format!("hark-desktop-{}.sock", std::process::id()));
            let _ = std::fs::remove_file(&tmp);
            Claim::Ours(UnixListener::bind(tmp).expect("a socket in the temp dir"))
        }
    }
}

pub fn serve(listener: UnixListener, show: impl Fn() + Send + 'static) {
    std::thread::Builder::new()
        .name("hark-single-instance".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let mut buf = [0u8; 16];
                let mut conn = conn;
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(1)));
                let _ = conn.read(&mut buf);
                show();
            }
        })
        .expect("single-instance thread");
}
