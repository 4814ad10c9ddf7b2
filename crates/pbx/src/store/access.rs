//! Who may see a recording (SPEC §3 roles): a system admin every recording, a tenant
//! admin their tenant's, a user only the recordings of calls they took part in as an
//! internal party. Listing, playing, downloading, exporting and deleting all ask here.

use super::{PartyKind, Recording, RecordingFilter, RecordingId, Role, Store, StoreError, User};

impl Recording {
    /// True when `viewer` may see (play, download, delete) this recording.
    pub fn visible_to(&self, viewer: &User) -> bool {
        match viewer.role {
            Role::SystemAdmin => true,
            Role::TenantAdmin => self.tenant_id == viewer.tenant_id,
            Role::User => {
                self.tenant_id == viewer.tenant_id
                    && self.parties.iter().any(|p| p.kind == PartyKind::Internal && p.party == viewer.extension)
            }
        }
    }
}

impl User {
    /// `filter` narrowed to what this user may see.
    pub fn narrow(&self, mut filter: RecordingFilter) -> RecordingFilter {
        match self.role {
            Role::SystemAdmin => {}
            Role::TenantAdmin => filter.tenant = Some(self.tenant_id),
            Role::User => {
                filter.tenant = Some(self.tenant_id);
                filter.party = Some(self.extension.clone());
            }
        }
        filter
    }
}

impl Store {
    /// The recordings matching `filter` that `viewer` may see, newest first.
    pub fn recordings_visible_to(&self, viewer: &User, filter: RecordingFilter) -> Result<Vec<Recording>, StoreError> {
        // A tenant asked for by a user of another tenant narrows to nothing, not to theirs.
        if viewer.role != Role::SystemAdmin && filter.tenant.is_some_and(|t| t != viewer.tenant_id) {
            return Ok(Vec::new());
        }
        let list = self.list_recordings(&viewer.narrow(filter))?;
        // The SQL filter already narrowed; the check keeps one definition of "visible".
        Ok(list.into_iter().filter(|r| r.visible_to(viewer)).collect())
    }

    /// One recording if `viewer` may see it. A recording they may not see is reported
    /// like a missing one, so ids do not reveal other people's calls.
    pub fn recording_visible_to(&self, viewer: &User, id: RecordingId) -> Result<Option<Recording>, StoreError> {
        Ok(self.recording(id)?.filter(|r| r.visible_to(viewer)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{NewRecording, NewUser, RecordingParty, TenantId};
    use super::*;

    fn recording(store: &mut Store, tenant: TenantId, session: &str, parties: Vec<RecordingParty>) -> RecordingId {
        let r = NewRecording::policy_audio(tenant, session, &format!("{session}.wav"), parties, 8000, 1_700_000_000_000, "test");
        store.start_recording(&r).unwrap()
    }

    #[test]
    fn users_see_their_calls_tenant_admins_their_tenant_system_admins_all() {
        let mut store = Store::open_in_memory().unwrap();
        let office = store.create_tenant("office", "office.test", true).unwrap();
        let other = store.create_tenant("other", "other.test", true).unwrap();
        for (t, ext, role) in [(office, "100", Role::User), (office, "101", Role::User), (office, "900", Role::TenantAdmin), (other, "100", Role::User), (other, "admin", Role::SystemAdmin)] {
            let realm = if t == office { "office.test" } else { "other.test" };
            store.add_user(NewUser { role, ..NewUser::with_password(t, ext, realm, "pw") }).unwrap();
        }
        let user = |t, ext: &str| store.user_by_extension(t, ext).unwrap().unwrap();
        let (u100, u101, admin, other100, sys) = (user(office, "100"), user(office, "101"), user(office, "900"), user(other, "100"), user(other, "admin"));
        let a = recording(&mut store, office, "s-a", vec![RecordingParty::internal("100"), RecordingParty::external("+15550100")]);
        let b = recording(&mut store, office, "s-b", vec![RecordingParty::internal("101"), RecordingParty::internal("102")]);
        let c = recording(&mut store, other, "s-c", vec![RecordingParty::internal("100")]);
        // An external number that looks like an extension gives no access.
        let d = recording(&mut store, office, "s-d", vec![RecordingParty::internal("102"), RecordingParty::external("101")]);

        let ids = |viewer: &User| -> Vec<i64> {
            let mut v: Vec<i64> = store.recordings_visible_to(viewer, RecordingFilter::default()).unwrap().iter().map(|r| r.id.0).collect();
            v.sort();
            v
        };
        assert_eq!(ids(&u100), vec![a.0]);
        assert_eq!(ids(&u101), vec![b.0]);
        assert_eq!(ids(&admin), vec![a.0, b.0, d.0]);
        assert_eq!(ids(&other100), vec![c.0], "same extension, other tenant: only that tenant's call");
        assert_eq!(ids(&sys), vec![a.0, b.0, c.0, d.0]);
        assert!(store.recording_visible_to(&u100, b).unwrap().is_none());
        assert!(store.recording_visible_to(&u101, d).unwrap().is_none());
        assert!(store.recording_visible_to(&admin, c).unwrap().is_none());
        assert!(store.recording_visible_to(&sys, c).unwrap().is_some());
        let asked_other = RecordingFilter { tenant: Some(other), ..Default::default() };
        assert!(store.recordings_visible_to(&admin, asked_other).unwrap().is_empty());
    }
}
