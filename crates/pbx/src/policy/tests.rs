//! Every combination of the switches, for internal and mixed calls, against the rules
//! written out independently of `decide`.

use super::*;

fn internal(ext: &str, audio: bool, video: bool) -> Party {
    Party::Internal { extension: ext.into(), record_audio: audio, record_video: video }
}

fn external(n: &str) -> Party {
    Party::External { number: n.into() }
}

const BOOLS: [bool; 2] = [false, true];

#[test]
fn internal_calls_every_combination() {
    for sys in BOOLS {
        for (t_audio, t_video) in BOOLS.iter().flat_map(|a| BOOLS.iter().map(move |v| (*a, *v))) {
            for (a_audio, a_video, b_audio, b_video) in (0..16).map(|i| (i & 1 != 0, i & 2 != 0, i & 4 != 0, i & 8 != 0)) {
                for has_video in BOOLS {
                    let parties = [internal("101", a_audio, a_video), internal("102", b_audio, b_video)];
                    let d = decide(
                        SystemSwitches { record_between_external_numbers: sys },
                        TenantSwitches { audio_recording: t_audio, video_recording: t_video },
                        &parties,
                        CallState { has_video, ..Default::default() },
                    );
                    // Rule 1: tenant AND (either user).
                    assert_eq!(d.audio, t_audio && (a_audio || b_audio), "{d:?}");
                    // Rule 2: video only for video calls, by the video switches.
                    assert_eq!(d.video, has_video && t_video && (a_video || b_video), "{d:?}");
                    // The system switch plays no part while an internal party is in the call.
                    assert!(!d.reasons.contains(&Reason::OnlyExternalParties));
                    assert!(!d.reasons.is_empty(), "a decision always says why");
                }
            }
        }
    }
}

#[test]
fn the_tenant_switch_turns_everyone_on_or_off_and_the_user_switch_excludes_one() {
    let parties = [internal("101", false, true), internal("102", false, true)];
    let off = decide(
        SystemSwitches { record_between_external_numbers: true },
        TenantSwitches { audio_recording: true, video_recording: false },
        &parties,
        CallState::default(),
    );
    assert!(!off.audio, "both users excluded");
    assert_eq!(off.explain(), "not recorded, because 101 does not record audio calls; 102 does not record audio calls; the call carries no video");
    let tenant_off = decide(
        SystemSwitches { record_between_external_numbers: true },
        TenantSwitches { audio_recording: false, video_recording: false },
        &[internal("101", true, true)],
        CallState::default(),
    );
    assert!(!tenant_off.audio);
    assert_eq!(tenant_off.reasons[0], Reason::TenantOff(Kind::Audio));
}

#[test]
fn mixed_calls_record_by_the_internal_party() {
    for (user_audio, expected) in [(true, true), (false, false)] {
        let d = decide(
            SystemSwitches { record_between_external_numbers: false },
            TenantSwitches { audio_recording: true, video_recording: true },
            &[external("+4930123"), internal("101", user_audio, true)],
            CallState::default(),
        );
        assert_eq!(d.audio, expected, "{d:?}");
    }
}

#[test]
fn only_external_parties_follow_the_system_switch() {
    let tenant = TenantSwitches { audio_recording: true, video_recording: true };
    let parties = [external("+4930123"), external("+4917000")];
    for sys in BOOLS {
        for (rec_audio, rec_video, has_video) in (0..8).map(|i| (i & 1 != 0, i & 2 != 0, i & 4 != 0)) {
            let d = decide(
                SystemSwitches { record_between_external_numbers: sys },
                tenant,
                &parties,
                CallState { has_video, recording_audio: rec_audio, recording_video: rec_video },
            );
            if sys {
                // Rule 4 with the switch on: what runs goes on; nothing new starts.
                assert_eq!((d.audio, d.video), (rec_audio, rec_video && has_video), "{d:?}");
            } else {
                assert_eq!((d.audio, d.video), (false, false));
                assert_eq!(d.reasons, vec![Reason::OnlyExternalParties]);
            }
        }
    }
}

#[test]
fn explanations_read_as_sentences() {
    let d = decide(
        SystemSwitches { record_between_external_numbers: true },
        TenantSwitches { audio_recording: true, video_recording: true },
        &[internal("101", true, false)],
        CallState { has_video: true, ..Default::default() },
    );
    assert_eq!(
        d.explain(),
        "recorded (audio), because 101 records audio calls and the tenant's audio recording is on; 101 does not record video calls"
    );
}
