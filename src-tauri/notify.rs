//! The incoming-call alert besides the ring tone (ring.rs): a desktop notification
//! ("Incoming call from 102") and the window asking for attention, when the person is
//! not looking at Hark. The notification goes over D-Bus (notify-rust) on a thread of its
//! own; without a notification daemon (a bare X server, CI) it is logged and the call goes
//! on as before.

use crate::phone::Snapshot;
use std::collections::HashSet;
use std::sync::Mutex;

/// The calls already announced, so each ringing call is announced once.
#[derive(Default)]
pub struct Announcer {
    seen: Mutex<HashSet<u64>>,
}

impl Announcer {
    /// The incoming calls of `snap` not announced before, as (call, peer). Calls that are
    /// gone are forgotten.
    pub fn new_incoming(&self, snap: &Snapshot) -> Vec<(u64, String)> {
        let mut seen = self.seen.lock().unwrap();
        seen.retain(|id| snap.calls.iter().any(|c| c.id == *id));
        snap.calls
            .iter()
            .filter(|c| c.state == "incoming" && seen.insert(c.id))
            .map(|c| (c.id, c.peer.clone()))
            .collect()
    }
}

/// Whether to alert beyond the ring: the window is hidden, minimized or not focused.
pub fn away(visible: bool, minimized: bool, focused: bool) -> bool {
    !visible || minimized || !focused
}

fn notification(peer: &str) -> notify_rust::Notification {
    let mut n = notify_rust::Notification::new();
    n.appname("Hark")
        .summary("Hark")
        .body(&format!("Incoming call from {peer}"))
        .icon("call-start")
        .urgency(notify_rust::Urgency::Critical)
        .timeout(notify_rust::Timeout::Milliseconds(30_000));
    n
}

/// Shows "Incoming call from PEER" on a thread of its own (a D-Bus call may wait);
/// failures are logged, never returned: the call rings on regardless.
pub fn incoming_call(peer: &str) {
    let n = notification(peer);
    let spawned = std::thread::Builder::new().name("hark-notify".into()).spawn(move || match n.show() {
        Ok(_) => tracing::info!("desktop notification shown: {}", n.body),
        Err(e) => tracing::warn!(error = %e, "no desktop notification for the incoming call (no notification service?)"),
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no desktop notification for the incoming call");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::CallView;

    fn call(id: u64, state: &str) -> CallView {
        CallView { started_ms: 0, ..crate::phone::new_call(id, "incoming", format!("10{id}"), state) }
    }

    #[test]
    fn only_a_person_not_looking_at_the_window_is_alerted() {
        assert!(!away(true, false, true));
        assert!(away(false, false, false));
        assert!(away(true, true, false));
        assert!(away(true, false, false));
    }

    #[test]
    fn a_missing_notification_service_is_an_error_not_a_panic() {
        // A bus name nobody owns: with no session bus (CI) the connection fails, with one
        // the service is unknown; either way show() reports it.
        let n = notification("102");
        assert_eq!(n.body, "Incoming call from 102");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let shown = rt.block_on(async { tokio::time::timeout(std::time::Duration::from_secs(30), n.show_async_at_bus("hark_test_nobody")).await });
        assert!(matches!(shown, Ok(Err(_))), "a notification to nobody did not fail");
    }

    #[test]
    fn each_ringing_call_is_announced_once() {
        let a = Announcer::default();
        let mut snap = Snapshot { calls: vec![call(1, "incoming")], ..Default::default() };
        assert_eq!(a.new_incoming(&snap), vec![(1, "101".to_string())]);
        assert!(a.new_incoming(&snap).is_empty());
        snap.calls[0].state = "up".into();
        snap.calls.push(call(2, "incoming"));
        assert_eq!(a.new_incoming(&snap), vec![(2, "102".to_string())]);
        snap.calls.clear();
        assert!(a.new_incoming(&snap).is_empty());
        assert!(a.seen.lock().unwrap().is_empty());
    }
}
