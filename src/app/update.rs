//! The one place the window's state changes.

use super::backend::{Backend, BackendError, History, MarkOutcome, MarkRequest, ProcAction};
use super::command::{Command, Effect};
use super::jobs::{Job, JobDone};
use super::state::{AppState, BannerLevel, Confirmation, DetailTab, Message};
use super::wizard;
use crate::escape::{for_display, os_lossless};
use crate::marks::MarkFor;
use crate::model::{Mark, ProgramKey};

/// Applies `cmd` to `state`, calling `backend` for side effects, and
/// returns what the shell still has to do. Backend errors become banners.
pub fn update(state: &mut AppState, cmd: Command, backend: &mut dyn Backend) -> Vec<Effect> {
    let mut effects = Vec::new();
    match cmd {
        Command::NewSnapshot(snap) => {
            if snap.generation <= state.snapshot.generation {
                return effects;
            }
            // A pending mark is done once the snapshot shows it.
            state
                .pending_marks
                .retain(|key, mark| snap.program(key).is_some_and(|p| p.mark != Some(*mark)));
            state.traffic.feed(&snap);
            state.snapshot = snap;
            super::wizard::offer_for_new_findings(state);
        }
        Command::MonitorError(e) => {
            if let Some(e) = &e
                && state.monitor_error.as_ref() != Some(e)
            {
                log::warn!("monitor: {e}");
            }
            state.monitor_error = e;
        }
        Command::Select(key) => {
            if key != state.selected {
                state.history = None;
            }
            state.selected = key;
        }
        Command::SetSearch(s) => state.search = s,
        Command::SetOnlyNetwork(v) => state.only_network = v,
        Command::SetOnlyAttention(v) => state.only_attention = v,
        Command::SetSort(s) => state.sort = s,
        Command::SetTab(t) => state.tab = t,
        Command::SetLang(l) => {
            if l != state.lang {
                state.lang = l;
                effects.push(Effect::LanguageChanged(l));
            }
        }
        Command::SetTrustDuration(d) => state.trust_duration = d,
        Command::SetMark(key, mark) => set_mark(state, &key, mark, backend),
        Command::AskProcess(key, action) => {
            let Some(p) = state.snapshot.program(&key) else {
                return effects;
            };
            let pids: Vec<u32> = p
                .processes
                .iter()
                .filter(|x| x.alive)
                .map(|x| x.pid)
                .collect();
            if pids.is_empty() {
                state.push_banner(
                    BannerLevel::Warning,
                    Message::new("gui.msg.not_running").arg("name", for_display(&p.name)),
                    true,
                );
                return effects;
            }
            let c = Confirmation {
                key,
                name: for_display(&p.name),
                pids,
                action,
            };
            if action == ProcAction::Resume {
                run_process_action(state, c, backend, &mut effects);
            } else {
                state.confirm = Some(c);
            }
        }
        Command::ConfirmProcess => {
            if let Some(c) = state.confirm.take() {
                run_process_action(state, c, backend, &mut effects);
            }
        }
        Command::CancelConfirm => state.confirm = None,
        Command::WriteReport(key) => wizard::save(state, &key, None, backend),
        Command::Consult(key) => wizard::open(state, key, backend),
        Command::OpenConsultation(key) => {
            wizard::open(state, key, backend);
            effects.push(Effect::ShowWindow);
        }
        Command::Wizard(c) => wizard::apply(state, c, backend, &mut effects),
        Command::LoadHistory(key) => match backend.connection_history(&key) {
            Ok(h) => {
                state.history = Some((key, h));
                state.tab = DetailTab::History;
            }
            Err(BackendError::Unavailable(_)) => {
                // Without a journal there is nothing to show; say so in place.
                state.history = Some((key, History::NoJournal));
                state.tab = DetailTab::History;
            }
            Err(e) => failed(state, "gui.action.history", &e),
        },
        Command::CopyText(text) => {
            effects.push(Effect::CopyToClipboard(text));
            state.push_banner(BannerLevel::Info, Message::new("gui.msg.copied"), true);
        }
        Command::DismissBanner(id) => state.banners.retain(|b| b.id != id || !b.dismissable),
        Command::DismissAllNotices => state.dismiss_all_notices(),
        Command::SortConnections(c) => state.conn_sort = state.conn_sort.clicked(c),
        Command::RefreshNow => effects.push(Effect::RefreshNow),
        Command::Background(c) => super::background::update(state, c, backend, &mut effects),
        Command::JobDone(done) => job_done(state, done, &mut effects),
        Command::Guard(u) => super::guard::apply(state, u, &mut effects),
        Command::Unblock(exe) => start_job(state, Job::Unblock(exe), backend),
        Command::DismissGuardNotice(id) => state.guard.dismiss(id),
    }
    effects
}

/// Applies every job the backend finished (the window does this each
/// frame); for tests of `update` without a window.
#[cfg(test)]
pub(crate) fn settle(state: &mut AppState, backend: &mut dyn Backend) -> Vec<Effect> {
    let mut effects = Vec::new();
    for done in backend.finished_jobs() {
        effects.extend(update(state, Command::JobDone(done), backend));
    }
    effects
}

/// Starts `job` on the backend's worker, unless the same one waits already.
pub(super) fn start_job(state: &mut AppState, job: Job, backend: &mut dyn Backend) {
    if let Some(id) = state.begin_job(job.clone()) {
        backend.start_job(id, job);
    }
}

/// Shows what became of a mark or the panic button.
fn job_done(state: &mut AppState, done: JobDone, effects: &mut Vec<Effect>) {
    state.jobs.retain(|(id, _)| *id != done.id);
    match done.job {
        Job::SetMark(req) => {
            if mark_done(state, &req, done.result, effects) {
                effects.push(Effect::RefreshNow);
            }
        }
        Job::Panic(on) => super::background::panic_done(state, on, done.result, effects),
        Job::Unblock(_) => match done.result {
            Ok(MarkOutcome::Guard(a)) => super::guard::answered(state, &a, true, effects),
            Ok(_) => {}
            Err(e) => failed(state, "guard.list.unblock", &e),
        },
    }
}

/// Shows a failed action once, in words the user can act on; the
/// technical reason goes behind "詳細" and into the log file.
pub(super) fn failed(state: &mut AppState, action_key: &str, e: &BackendError) {
    match e {
        BackendError::Unavailable(f) => state.push_banner(
            BannerLevel::Error,
            Message::new("gui.err.unavailable")
                .arg("action_key", action_key)
                .arg("feature_key", format!("gui.feature.{}", f.as_str())),
            true,
        ),
        BackendError::PermissionDenied(d) => {
            state.push_notice_detail(
                BannerLevel::Error,
                Message::new("gui.err.permission").arg("action_key", action_key),
                d.clone(),
            );
        }
        BackendError::Failed(d) => {
            state.push_notice_detail(
                BannerLevel::Error,
                Message::new("gui.err.failed").arg("action_key", action_key),
                d.clone(),
            );
        }
    }
}

fn set_mark(state: &mut AppState, key: &ProgramKey, mark: Mark, backend: &mut dyn Backend) {
    let Some(p) = state.snapshot.program(key) else {
        return;
    };
    let (Some(exe), Some(sha256)) = (p.exe.clone(), p.sha256.clone()) else {
        state.push_banner(
            BannerLevel::Warning,
            Message::new("gui.msg.cannot_mark").arg("name", for_display(&p.name)),
            true,
        );
        return;
    };
    let req = MarkRequest {
        key: key.clone(),
        exe,
        sha256,
        pids: p
            .processes
            .iter()
            .filter(|x| x.alive)
            .map(|x| x.pid)
            .collect(),
        mark,
        duration: match mark {
            Mark::Trusted => state.trust_duration,
            Mark::Unknown | Mark::Blocked => MarkFor::Always,
        },
    };
    start_job(state, Job::SetMark(req), backend);
}

/// Shows a finished mark; true when it was recorded.
fn mark_done(
    state: &mut AppState,
    req: &MarkRequest,
    result: Result<MarkOutcome, BackendError>,
    effects: &mut Vec<Effect>,
) -> bool {
    let mark = req.mark;
    match result {
        // A block is the guard's: what it read back is all that is shown.
        Ok(outcome) if mark == Mark::Blocked => {
            if let MarkOutcome::Guard(a) = &outcome {
                super::guard::answered(state, a, true, effects);
            }
            true
        }
        Ok(outcome) => {
            // The unblock that came with trusting or "unknown", if any.
            if let MarkOutcome::Guard(a) = &outcome {
                super::guard::answered(state, a, true, effects);
            }
            if let MarkOutcome::NotEnforced(why) = outcome {
                state.push_notice_detail(
                    BannerLevel::Warning,
                    Message::new("gui.msg.not_enforced"),
                    why,
                );
            }
            state.pending_marks.insert(req.key.clone(), mark);
            let name = state
                .snapshot
                .program(&req.key)
                .map(|p| for_display(&p.name))
                .unwrap_or_else(|| for_display(&os_lossless(req.exe.as_os_str())));
            state.push_banner(
                BannerLevel::Info,
                Message::new("gui.msg.marked")
                    .arg("name", name)
                    .arg("mark_key", format!("gui.badge.{}", mark.as_str())),
                true,
            );
            true
        }
        Err(e) => {
            let action = match mark {
                Mark::Trusted => "gui.action.trust",
                Mark::Unknown => "gui.action.unknown",
                Mark::Blocked => "gui.action.block",
            };
            failed(state, action, &e);
            false
        }
    }
}

fn run_process_action(
    state: &mut AppState,
    c: Confirmation,
    backend: &mut dyn Backend,
    effects: &mut Vec<Effect>,
) {
    let action_key = format!("gui.action.{}", c.action.as_str());
    match backend.process_action(c.action, &c.pids) {
        Ok(()) => {
            state.push_banner(
                BannerLevel::Info,
                Message::new("gui.msg.process_done")
                    .arg("name", c.name)
                    .arg("action_key", action_key),
                true,
            );
            effects.push(Effect::RefreshNow);
        }
        Err(e) => failed(state, &action_key, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::backend::{Call, Feature, RecordingBackend};
    use crate::i18n::Lang;
    use crate::model::{ProcessInfo, Program, Snapshot};
    use std::sync::Arc;
    use std::time::SystemTime;

    fn snap(generation: u64, mark: Option<Mark>) -> Arc<Snapshot> {
        let mut s = Snapshot::empty();
        s.generation = generation;
        s.programs = vec![Program {
            key: ProgramKey::Exe("/tmp/tool".into()),
            name: "tool".into(),
            exe: Some("/tmp/tool".into()),
            exe_deleted: false,
            sha256: Some("ab".repeat(32)),
            processes: vec![ProcessInfo {
                parent: Some(1),
                ..ProcessInfo::fake(42, "tool")
            }],
            connections: vec![],
            findings: vec![],
            mark,
            stale_mark: None,
            first_seen: SystemTime::UNIX_EPOCH,
        }];
        Arc::new(s)
    }

    fn key() -> ProgramKey {
        ProgramKey::Exe("/tmp/tool".into())
    }

    #[test]
    fn stale_generation_is_dropped() {
        let mut st = AppState::new(Lang::Ja);
        let mut b = RecordingBackend::new();
        update(&mut st, Command::NewSnapshot(snap(5, None)), &mut b);
        update(
            &mut st,
            Command::NewSnapshot(snap(3, Some(Mark::Blocked))),
            &mut b,
        );
        assert_eq!(st.snapshot.generation, 5);
        assert_eq!(st.snapshot.programs[0].mark, None);
    }

    #[test]
    fn a_block_is_asked_of_the_guard_and_shown_only_as_it_reads_back() {
        let mut st = AppState::new(Lang::Ja);
        let mut b = RecordingBackend::new();
        update(&mut st, Command::NewSnapshot(snap(1, None)), &mut b);
        st.trust_duration = MarkFor::Hour;
        let fx = update(&mut st, Command::SetMark(key(), Mark::Blocked), &mut b);
        assert!(fx.is_empty(), "nothing to refresh before the mark is done");
        assert!(st.waiting());
        // A second click while the first waits adds nothing.
        update(&mut st, Command::SetMark(key(), Mark::Blocked), &mut b);
        assert_eq!(b.calls().len(), 1);
        assert!(settle(&mut st, &mut b).contains(&Effect::RefreshNow));
        assert!(!st.waiting());
        assert_eq!(
            b.guard().lock().requests,
            vec![crate::guard::api::Request::Block {
                exe: "/tmp/tool".into()
            }]
        );
        let Call::SetMark(req) = &b.calls()[0] else {
            panic!("expected a mark call");
        };
        assert_eq!((req.mark, req.duration), (Mark::Blocked, MarkFor::Always));
        assert_eq!(req.pids, vec![42]);
        let p = st.snapshot.programs[0].clone();
        assert_eq!(st.mark_of(&p), Some(Mark::Blocked));
        update(&mut st, Command::NewSnapshot(snap(2, None)), &mut b);
        assert_eq!(
            st.mark_of(&st.snapshot.programs[0].clone()),
            Some(Mark::Blocked)
        );
        // The guard lifts it (another client): a user-side "blocked"
        // mark shows nothing as blocked.
        b.guard().lock().status.blocked.clear();
        settle_guard(&mut st, &mut b);
        update(
            &mut st,
            Command::NewSnapshot(snap(3, Some(Mark::Blocked))),
            &mut b,
        );
        assert_eq!(st.mark_of(&st.snapshot.programs[0].clone()), None);
        assert!(st.pending_marks.is_empty());
    }

    fn settle_guard(st: &mut AppState, b: &mut RecordingBackend) {
        for u in b.guard_updates() {
            update(st, Command::Guard(u), b);
        }
    }

    #[test]
    fn a_refused_block_is_not_shown_and_the_notice_says_why() {
        let mut st = AppState::new(Lang::En);
        let mut b = RecordingBackend::new();
        b.guard().lock().refuse = Some(crate::guard::api::Refusal::NoAuthority);
        update(&mut st, Command::NewSnapshot(snap(1, None)), &mut b);
        update(&mut st, Command::SetMark(key(), Mark::Blocked), &mut b);
        settle(&mut st, &mut b);
        assert_eq!(st.mark_of(&st.snapshot.programs[0].clone()), None);
        assert!(st.banners.is_empty(), "no success claimed");
        let text = st.guard.notices[0].text.text(Lang::En);
        assert!(text.contains("Could not block “tool”"), "{text}");
        assert!(text.contains("Ask the administrator"), "{text}");
        let id = st.guard.notices[0].id;
        update(&mut st, Command::DismissGuardNotice(id), &mut b);
        assert!(st.guard.notices.is_empty());
    }

    #[test]
    fn no_guard_is_said_once() {
        let mut st = AppState::new(Lang::Ja);
        let mut b = RecordingBackend::new();
        b.guard().lock().absent = true;
        settle_guard(&mut st, &mut b);
        assert!(!st.guard.can_enforce());
        assert_eq!(st.guard.notices.len(), 1);
        let id = st.guard.notices[0].id;
        update(&mut st, Command::DismissGuardNotice(id), &mut b);
        // Seen again later: not said again.
        b.guard().lock().absent = false;
        settle_guard(&mut st, &mut b);
        b.guard().lock().absent = true;
        settle_guard(&mut st, &mut b);
        assert!(st.guard.notices.is_empty());
    }

    #[test]
    fn trust_keeps_the_chosen_duration() {
        let mut st = AppState::new(Lang::Ja);
        let mut b = RecordingBackend::new();
        update(&mut st, Command::NewSnapshot(snap(1, None)), &mut b);
        update(&mut st, Command::SetTrustDuration(MarkFor::Restart), &mut b);
        update(&mut st, Command::SetMark(key(), Mark::Trusted), &mut b);
        let Call::SetMark(req) = &b.calls()[0] else {
            panic!("expected a mark call");
        };
        assert_eq!(req.duration, MarkFor::Restart);
    }

    #[test]
    fn unavailable_feature_becomes_one_banner_and_no_pending_mark() {
        let mut st = AppState::new(Lang::En);
        let mut b = RecordingBackend::new();
        b.fail_with(Some(BackendError::Unavailable(Feature::Marks)));
        update(&mut st, Command::NewSnapshot(snap(1, None)), &mut b);
        for _ in 0..2 {
            update(&mut st, Command::SetMark(key(), Mark::Blocked), &mut b);
            settle(&mut st, &mut b);
        }
        assert!(st.pending_marks.is_empty());
        assert_eq!(st.banners.len(), 1);
        let text = st.banners[0].message.text(Lang::En);
        assert!(!text.contains("gui."), "translated: {text}");
    }

    #[test]
    fn terminate_waits_for_confirmation_resume_does_not() {
        let mut st = AppState::new(Lang::Ja);
        let mut b = RecordingBackend::new();
        update(&mut st, Command::NewSnapshot(snap(1, None)), &mut b);
        update(
            &mut st,
            Command::AskProcess(key(), ProcAction::Terminate),
            &mut b,
        );
        assert!(b.calls().is_empty());
        assert!(st.confirm.is_some());
        update(&mut st, Command::CancelConfirm, &mut b);
        assert!(b.calls().is_empty());
        update(
            &mut st,
            Command::AskProcess(key(), ProcAction::Terminate),
            &mut b,
        );
        update(&mut st, Command::ConfirmProcess, &mut b);
        assert_eq!(
            b.calls(),
            vec![Call::Process(ProcAction::Terminate, vec![42])]
        );
        update(
            &mut st,
            Command::AskProcess(key(), ProcAction::Resume),
            &mut b,
        );
        assert_eq!(b.calls()[1], Call::Process(ProcAction::Resume, vec![42]));
        assert!(st.confirm.is_none());
    }

    #[test]
    fn program_without_hash_cannot_be_marked() {
        let mut st = AppState::new(Lang::Ja);
        let mut b = RecordingBackend::new();
        let mut s = (*snap(1, None)).clone();
        s.programs[0].sha256 = None;
        update(&mut st, Command::NewSnapshot(Arc::new(s)), &mut b);
        update(&mut st, Command::SetMark(key(), Mark::Blocked), &mut b);
        assert!(b.calls().is_empty());
        assert_eq!(st.banners[0].level, BannerLevel::Warning);
    }
}
