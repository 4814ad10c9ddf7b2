//! The ring tone of incoming calls, played through rodio on its own thread.

use std::sync::{mpsc, Mutex};
use std::time::Duration;

/// The ring tone of incoming calls (440 + 480 Hz, 1 s on, 2 s off) on the default output,
/// through rodio; silent when there is no output device.
pub struct Ringer {
    tx: Mutex<mpsc::Sender<bool>>,
}

impl Ringer {
    pub fn new() -> Ringer {
        let (tx, rx) = mpsc::channel::<bool>();
        std::thread::Builder::new()
            .name("hark-ringer".into())
            .spawn(move || {
                use rodio::Source;
                let mut ringing = false;
                let mut output: Option<(rodio::OutputStream, rodio::OutputStreamHandle)> = None;
                let mut sink: Option<rodio::Sink> = None;
                loop {
                    let msg = if ringing { rx.recv_timeout(Duration::from_secs(3)) } else { rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected) };
                    match msg {
                        Ok(on) => ringing = on,
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                    if !ringing {
                        if let Some(s) = sink.take() {
                            s.stop();
                        }
                        continue;
                    }
                    if output.is_none() {
                        output = rodio::OutputStream::try_default().ok();
                    }
                    let Some((_, handle)) = &output else { continue };
                    if let Ok(s) = rodio::Sink::try_new(handle) {
                        let tone = rodio::source::SineWave::new(440.0)
                            .mix(rodio::source::SineWave::new(480.0))
                            .take_duration(Duration::from_secs(1))
                            .amplify(0.1);
                        s.append(tone);
                        sink = Some(s);
                    }
                }
            })
            .expect("ringer thread");
        Ringer { tx: Mutex::new(tx) }
    }

    pub fn set(&self, on: bool) {
        let _ = self.tx.lock().unwrap().send(on);
    }
}

impl Default for Ringer {
    fn default() -> Self {
        Ringer::new()
    }
}
