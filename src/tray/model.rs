//! What the tray shows, as plain data: a level (green, amber, red) and
//! counts worked out from a snapshot, plus the words for the tooltip and
//! menu. Pure, so it is tested without a desktop.

use std::time::SystemTime;

use crate::i18n::{Lang, tr_args_in, tr_in};
use crate::model::{FindingKind, Mark, Program, Severity, Snapshot};

/// The colour of the tray icon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// Nothing needs attention.
    Green,
    /// Something new to look at: a new or unknown program on the network,
    /// or a medium finding.
    Amber,
    /// Act now: a high finding, or a blocked program running.
    Red,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Green => "green",
            Level::Amber => "amber",
            Level::Red => "red",
        }
    }
}

/// How many programs are in each situation that colours the icon.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Counts {
    /// Programs with a live connection.
    pub online: usize,
    /// New (not in the baseline) or marked-unknown programs using the network.
    pub new_or_unknown: usize,
    /// Programs whose most serious finding is medium.
    pub medium: usize,
    /// Programs with a high finding.
    pub high: usize,
    /// Blocked programs that are running.
    pub blocked_running: usize,
    /// Programs the OS reports suspended (every live process stopped).
    pub suspended: usize,
}

impl Counts {
    /// Counts the programs of `snap` (no guard state known).
    pub fn of(snap: &Snapshot) -> Counts {
        Counts::with_blocked(snap, &[])
    }

    /// Counts the programs of `snap`; `blocked` are the programs the guard
    /// reads back as blocked (a user-side "blocked" mark counts for
    /// nothing).
    pub fn with_blocked(snap: &Snapshot, blocked: &[std::path::PathBuf]) -> Counts {
        let mut c = Counts::default();
        for p in &snap.programs {
            let online = p.uses_network();
            if online {
                c.online += 1;
            }
            if online && (has(p, FindingKind::NewProgram) || p.mark == Some(Mark::Unknown)) {
                c.new_or_unknown += 1;
            }
            match p.top_severity() {
                Some(Severity::High) => c.high += 1,
                Some(Severity::Medium) => c.medium += 1,
                _ => {}
            }
            let alive = p.processes.iter().any(|x| x.alive);
            let guarded = p.exe.as_ref().is_some_and(|e| blocked.contains(e));
            if has(p, FindingKind::BlockedRunning) || (guarded && alive) {
                c.blocked_running += 1;
            }
            if crate::app::programs::run_state(snap, p) == crate::app::RunState::Suspended {
                c.suspended += 1;
            }
        }
        c
    }

    pub fn level(&self) -> Level {
        if self.high > 0 || self.blocked_running > 0 {
            Level::Red
        } else if self.new_or_unknown > 0 || self.medium > 0 {
            Level::Amber
        } else {
            Level::Green
        }
    }
}

fn has(p: &Program, kind: FindingKind) -> bool {
    p.findings.iter().any(|f| f.kind == kind)
}

/// Everything the tray shows. The tray redraws only when this changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayState {
    pub lang: Lang,
    pub level: Level,
    pub counts: Counts,
    /// The panic button is on: all traffic is stopped.
    pub panic: bool,
    /// Notifications are muted until this local time ("14:05"), if muted.
    pub muted_until: Option<String>,
    /// False when the user turned notifications off.
    pub notifications: bool,
    /// False until the first snapshot arrives.
    pub ready: bool,
    /// False when it is known that no guard service runs: the panic item
    /// cannot work and is disabled.
    pub guard_available: bool,
    /// The programs the guard reads back as blocked.
    pub blocked: Vec<std::path::PathBuf>,
}

impl TrayState {
    /// The state before anything is known.
    pub fn initial(lang: Lang) -> Self {
        TrayState {
            lang,
            level: Level::Green,
            counts: Counts::default(),
            panic: false,
            muted_until: None,
            notifications: true,
            ready: false,
            guard_available: true,
            blocked: Vec::new(),
        }
    }

    /// The state for `snap`, keeping the switches of `self`.
    pub fn with_snapshot(&self, snap: &Snapshot) -> Self {
        let counts = Counts::with_blocked(snap, &self.blocked);
        TrayState {
            counts,
            level: counts.level(),
            ready: snap.generation > 0 || self.ready,
            ..self.clone()
        }
    }

    fn t(&self, key: &str) -> String {
        tr_in(self.lang, key)
    }

    /// The tooltip's title: what the colour means, in words.
    pub fn title(&self) -> String {
        let key = if !self.ready {
            "tray.title.starting"
        } else {
            match self.level {
                Level::Green => "tray.title.green",
                Level::Amber => "tray.title.amber",
                Level::Red => "tray.title.red",
            }
        };
        self.t(key)
    }

    /// The tooltip's text: the counts behind the colour, one per line, and
    /// the switches that are on.
    pub fn description(&self) -> String {
        let c = &self.counts;
        let mut lines = Vec::new();
        let count = |key: &str, n: usize| tr_args_in(self.lang, key, &[("count", &n.to_string())]);
        lines.push(count("tray.tip.online", c.online));
        if c.new_or_unknown > 0 {
            lines.push(count("tray.tip.new", c.new_or_unknown));
        }
        if c.medium > 0 {
            lines.push(count("tray.tip.medium", c.medium));
        }
        if c.high > 0 {
            lines.push(count("tray.tip.high", c.high));
        }
        if c.blocked_running > 0 {
            lines.push(count("tray.tip.blocked", c.blocked_running));
        }
        if c.suspended > 0 {
            lines.push(count("tray.tip.suspended", c.suspended));
        }
        if self.panic {
            lines.push(self.t("tray.tip.panic"));
        }
        if !self.notifications {
            lines.push(self.t("tray.tip.notifications_off"));
        } else if let Some(t) = &self.muted_until {
            lines.push(tr_args_in(self.lang, "tray.tip.muted", &[("time", t)]));
        }
        lines.join("\n")
    }

    /// The menu, in order, as (item, label). The panic item says what it
    /// will do: stop everything, or resume.
    pub fn menu(&self) -> Vec<(MenuItem, String)> {
        let panic = if self.panic {
            (MenuItem::Resume, self.t("tray.menu.resume"))
        } else {
            (MenuItem::Panic, self.t("tray.menu.panic"))
        };
        let mute = match &self.muted_until {
            Some(t) => tr_args_in(self.lang, "tray.menu.muted", &[("time", t)]),
            None => self.t("tray.menu.mute"),
        };
        vec![
            (MenuItem::Open, self.t("tray.menu.open")),
            (MenuItem::MuteOneHour, mute),
            panic,
            (MenuItem::Consult, self.t("tray.menu.consult")),
            (MenuItem::Quit, self.t("tray.menu.quit")),
        ]
    }

    /// Whether `item` can be chosen now: muting needs notifications on and
    /// not already muted.
    pub fn is_enabled(&self, item: MenuItem) -> bool {
        match item {
            MenuItem::MuteOneHour => self.notifications && self.muted_until.is_none(),
            // Without a guard nothing can stop traffic; resuming stays
            // possible so a stop is never stuck.
            MenuItem::Panic => self.guard_available,
            _ => true,
        }
    }

    /// Title and description as one tooltip of at most `max_units` UTF-16
    /// units (the Windows notification area cuts tooltips at 127), cut at
    /// a character and marked with "…" when it does not fit.
    pub fn tooltip_within(&self, max_units: usize) -> String {
        let full = format!("{}\n{}", self.title(), self.description());
        let full = full.trim_end();
        if full.encode_utf16().count() <= max_units {
            return full.to_string();
        }
        let mut out = String::new();
        let mut used = 1; // the ellipsis
        for c in full.chars() {
            if used + c.len_utf16() > max_units {
                break;
            }
            used += c.len_utf16();
            out.push(c);
        }
        out.push('…');
        out
    }
}

impl MenuItem {
    /// A stable identifier for menu toolkits that address items by id.
    pub fn id(self) -> &'static str {
        match self {
            MenuItem::Open => "open",
            MenuItem::MuteOneHour => "mute-1h",
            MenuItem::Panic => "panic",
            MenuItem::Resume => "resume",
            MenuItem::Consult => "consult",
            MenuItem::Quit => "quit",
        }
    }

    pub fn from_id(id: &str) -> Option<MenuItem> {
        [
            MenuItem::Open,
            MenuItem::MuteOneHour,
            MenuItem::Panic,
            MenuItem::Resume,
            MenuItem::Consult,
            MenuItem::Quit,
        ]
        .into_iter()
        .find(|m| m.id() == id)
    }

    /// A separator goes before the panic switch and before quitting, so
    /// neither is chosen by a slip of the mouse.
    pub fn after_separator(self) -> bool {
        matches!(self, MenuItem::Panic | MenuItem::Resume | MenuItem::Quit)
    }
}

/// A label for Windows menus, where `&` marks the access key: a literal
/// ampersand is doubled.
pub fn windows_menu_label(label: &str) -> String {
    label.replace('&', "&&")
}

/// A tray menu entry; each one sends the [`super::TrayEvent`] of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MenuItem {
    Open,
    MuteOneHour,
    Panic,
    Resume,
    Consult,
    Quit,
}

/// `HH:MM` of `t` at `offset`, for "muted until".
pub fn clock_text(t: SystemTime, offset: time::UtcOffset) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(dt) => {
            let local = dt.to_offset(offset);
            format!("{:02}:{:02}", local.hour(), local.minute())
        }
        Err(_) => "--:--".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Connection, Finding, ProcessInfo, ProgramKey, Protocol, SockState};
    use std::time::{Duration, UNIX_EPOCH};

    fn program(name: &str, online: bool) -> Program {
        let conn = Connection {
            bytes_received: None,
            bytes_sent: None,
            pid: Some(10),
            protocol: Protocol::Tcp,
            local: "10.0.0.2:50000".parse().unwrap(),
            remote: Some("203.0.113.7:443".parse().unwrap()),
            state: SockState::Established,
            first_seen: UNIX_EPOCH,
            last_seen: UNIX_EPOCH,
            live: true,
            uid: None,
            remote_name: None,
        };
        Program {
            key: ProgramKey::Exe(format!("/opt/{name}").into()),
            name: name.into(),
            exe: Some(format!("/opt/{name}").into()),
            exe_deleted: false,
            sha256: None,
            processes: vec![ProcessInfo::fake(10, name)],
            connections: if online { vec![conn] } else { vec![] },
            findings: vec![],
            mark: None,
            stale_mark: None,
            first_seen: UNIX_EPOCH,
        }
    }

    fn finding(kind: FindingKind, severity: Severity) -> Finding {
        Finding {
            kind,
            severity,
            summary: String::new(),
            evidence: Default::default(),
            first_raised: UNIX_EPOCH,
        }
    }

    fn snap(programs: Vec<Program>) -> Snapshot {
        let mut s = Snapshot::empty();
        s.generation = 1;
        s.programs = programs;
        s
    }

    fn level(programs: Vec<Program>) -> Level {
        Counts::of(&snap(programs)).level()
    }

    #[test]
    fn known_programs_on_the_network_are_green() {
        let mut quiet = program("editor", false);
        quiet
            .findings
            .push(finding(FindingKind::Listening, Severity::Low));
        assert_eq!(level(vec![program("browser", true), quiet]), Level::Green);
    }

    #[test]
    fn a_new_program_turns_amber_only_while_it_uses_the_network() {
        let mut new = program("freetool", true);
        new.findings
            .push(finding(FindingKind::NewProgram, Severity::Low));
        assert_eq!(level(vec![new.clone()]), Level::Amber);
        new.connections.clear();
        assert_eq!(level(vec![new]), Level::Green);
    }

    #[test]
    fn a_program_marked_unknown_on_the_network_is_amber() {
        let mut p = program("tool", true);
        p.mark = Some(Mark::Unknown);
        assert_eq!(level(vec![p]), Level::Amber);
    }

    #[test]
    fn a_medium_finding_is_amber_even_offline() {
        let mut p = program("tool", false);
        p.findings
            .push(finding(FindingKind::RunsFromTemp, Severity::Medium));
        assert_eq!(level(vec![p]), Level::Amber);
    }

    #[test]
    fn a_high_finding_or_a_running_blocked_program_is_red() {
        let mut high = program("iesys", true);
        high.findings
            .push(finding(FindingKind::Beaconing, Severity::High));
        let mut new = program("freetool", true);
        new.findings
            .push(finding(FindingKind::NewProgram, Severity::Low));
        assert_eq!(level(vec![new.clone(), high]), Level::Red);

        let mut blocked = program("blocked", false);
        // A user-side "blocked" mark is not a block.
        blocked.mark = Some(Mark::Blocked);
        assert_eq!(level(vec![new.clone(), blocked.clone()]), Level::Amber);
        // What the guard blocks and runs is red.
        let guarded = vec![blocked.exe.clone().unwrap()];
        let red = |ps: Vec<Program>| Counts::with_blocked(&snap(ps), &guarded).level();
        assert_eq!(red(vec![new.clone(), blocked.clone()]), Level::Red);
        // Once it stops: back to what the rest says.
        blocked.processes[0].alive = false;
        assert_eq!(red(vec![new, blocked]), Level::Amber);
    }

    #[test]
    fn tooltip_counts_in_japanese_and_english() {
        let mut new = program("freetool", true);
        new.findings
            .push(finding(FindingKind::NewProgram, Severity::Low));
        let mut high = program("iesys", true);
        high.findings
            .push(finding(FindingKind::Tor, Severity::High));
        let s = snap(vec![program("browser", true), new, high]);
        let ja = TrayState::initial(Lang::Ja).with_snapshot(&s);
        assert_eq!(ja.level, Level::Red);
        assert_eq!(
            ja.counts,
            Counts {
                online: 3,
                new_or_unknown: 1,
                medium: 0,
                high: 1,
                blocked_running: 0,
                suspended: 0,
            }
        );
        let d = ja.description();
        assert!(d.contains('3') && d.contains('1'), "{d}");
        assert_eq!(d.lines().count(), 3, "online, new, high: {d}");
        assert!(!ja.title().contains("tray."), "translated: {}", ja.title());
        let en = TrayState {
            lang: Lang::En,
            ..ja.clone()
        };
        assert_ne!(en.title(), ja.title());
        assert!(en.description().contains("3"));
    }

    #[test]
    fn tooltip_says_when_stopped_and_muted() {
        let mut st = TrayState::initial(Lang::En).with_snapshot(&snap(vec![]));
        st.panic = true;
        st.muted_until = Some("14:05".into());
        let d = st.description();
        assert!(d.contains("14:05"), "{d}");
        assert_eq!(d.lines().count(), 3, "{d}");
        st.notifications = false;
        assert!(!st.description().contains("14:05"), "off wins over muted");
    }

    #[test]
    fn menu_offers_resume_only_while_stopped() {
        let mut st = TrayState::initial(Lang::Ja);
        let items: Vec<MenuItem> = st.menu().into_iter().map(|(i, _)| i).collect();
        assert_eq!(
            items,
            vec![
                MenuItem::Open,
                MenuItem::MuteOneHour,
                MenuItem::Panic,
                MenuItem::Consult,
                MenuItem::Quit
            ]
        );
        let labels: Vec<String> = st.menu().into_iter().map(|(_, l)| l).collect();
        assert_eq!(
            labels,
            vec![
                "開く",
                "通知を1時間止める",
                "通信を全部止める",
                "相談する",
                "終了"
            ]
        );
        st.panic = true;
        assert_eq!(st.menu()[2], (MenuItem::Resume, "通信を再開".to_string()));
    }

    #[test]
    fn clock_text_is_local_time() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_608_000 + 5 * 60); // 12:05Z
        let jst = time::UtcOffset::from_hms(9, 0, 0).unwrap();
        assert_eq!(clock_text(t, jst), "21:05");
    }

    #[test]
    fn windows_tooltip_fits_127_units_and_says_it_was_cut() {
        let mut st = TrayState::initial(Lang::Ja).with_snapshot(&snap(
            (0..40).map(|i| program(&format!("p{i}"), true)).collect(),
        ));
        st.panic = true;
        st.muted_until = Some("14:05".into());
        let full = format!("{}\n{}", st.title(), st.description());
        assert!(full.encode_utf16().count() > 60);
        let cut = st.tooltip_within(60);
        assert!(cut.encode_utf16().count() <= 60, "{cut}");
        assert!(cut.ends_with('…'));
        assert!(full.starts_with(cut.trim_end_matches('…')));
        // A tooltip that fits is the title and description unchanged.
        let short = TrayState::initial(Lang::En);
        assert_eq!(
            short.tooltip_within(127),
            format!("{}\n{}", short.title(), short.description()).trim_end()
        );
    }

    #[test]
    fn menu_ids_round_trip_and_mute_is_disabled_while_muted() {
        let mut st = TrayState::initial(Lang::En);
        for (item, _) in st.menu() {
            assert_eq!(MenuItem::from_id(item.id()), Some(item));
        }
        assert_eq!(MenuItem::from_id("rm -rf"), None);
        assert!(st.is_enabled(MenuItem::MuteOneHour));
        st.muted_until = Some("14:05".into());
        assert!(!st.is_enabled(MenuItem::MuteOneHour));
        st.muted_until = None;
        st.notifications = false;
        assert!(!st.is_enabled(MenuItem::MuteOneHour));
        assert!(st.is_enabled(MenuItem::Panic));
        // Without a guard nothing can stop traffic: no dead menu item.
        st.guard_available = false;
        assert!(!st.is_enabled(MenuItem::Panic));
        assert!(st.is_enabled(MenuItem::Resume));
    }

    #[test]
    fn ampersands_in_windows_menu_labels_are_literal() {
        assert_eq!(windows_menu_label("Q&A & help"), "Q&&A && help");
    }
}
