//! The details pane: who the selected program is, what kizuki noticed,
//! what the user can do, and its connections.

use egui::{Frame, Grid, Label, Margin, RichText, ScrollArea, TextStyle, Ui};
use egui_extras::{Column, TableBuilder};

use super::columns::{Need, fit};
use super::format::{addr, clock, date_time};
use super::list::finding_title;
use super::theme;
use super::widgets::{chip, cut, initial};
use crate::app::programs::{RunState, attention, badge, parent_chain, run_state, shown_path};
use crate::app::{
    AppState, BannerLevel, Command, ConnColumn, DetailTab, History, HistorySource, ProcAction,
};
use crate::escape::for_display;
use crate::marks::MarkFor;
use crate::model::{Connection, Mark, Program, SockState};

const TABLE_ROW: f32 = 20.0;

pub fn show(ui: &mut Ui, state: &AppState, cmds: &mut Vec<Command>) {
    let Some(key) = &state.selected else {
        placeholder(ui, state, cmds);
        return;
    };
    let Some(p) = state.snapshot.program(key) else {
        ui.add_space(12.0);
        ui.label(state.t("gui.details.gone"));
        return;
    };
    header(ui, state, p);
    warnings(ui, state, p);
    actions(ui, state, p, cmds);
    if let Some(saved) = state.last_report.as_ref().filter(|r| r.key == p.key) {
        super::report_box::show(ui, state, saved, cmds);
    }
    ui.add_space(4.0);
    findings(ui, state, p);
    ui.add_space(4.0);
    tabs(ui, state, p, cmds);
    ui.separator();
    match state.tab {
        DetailTab::Connections => connections(ui, state, p, cmds),
        DetailTab::About => about(ui, state, p, cmds),
        DetailTab::History => history(ui, state, p, cmds),
        DetailTab::Traffic => super::traffic::tab(ui, state, p),
    }
}

/// Before a program is chosen: how things stand, in one sentence.
fn placeholder(ui: &mut Ui, state: &AppState, cmds: &mut Vec<Command>) {
    // Scrolls when notices leave little room (a small screen).
    ScrollArea::vertical()
        .id_salt("overview")
        .auto_shrink([false, false])
        .show(ui, |ui| overview(ui, state, cmds));
}

fn overview(ui: &mut Ui, state: &AppState, cmds: &mut Vec<Command>) {
    let snap = &state.snapshot;
    ui.add_space(16.0);
    if snap.generation > 0 {
        let needing = snap
            .programs
            .iter()
            .filter(|p| attention(state.mark_of(p), p) > 0)
            .count();
        let conns: usize = snap
            .programs
            .iter()
            .map(|p| p.live_connections().count())
            .sum();
        let dark = ui.visuals().dark_mode;
        let (c, text) = if needing > 0 {
            (
                theme::banner(BannerLevel::Warning, dark),
                state.t_args("gui.overview.attention", &[("count", &needing.to_string())]),
            )
        } else {
            (theme::calm(dark), state.t("gui.overview.calm"))
        };
        Frame::new()
            .fill(c.fill)
            .corner_radius(8)
            .inner_margin(Margin::symmetric(14, 10))
            .show(ui, |ui| {
                ui.set_width(ui.available_width());
                ui.label(RichText::new(text).heading().color(c.text));
                ui.label(
                    RichText::new(state.t_args(
                        "gui.overview.counts",
                        &[
                            ("programs", &snap.programs.len().to_string()),
                            ("conns", &conns.to_string()),
                        ],
                    ))
                    .color(c.text),
                );
            });
        ui.add_space(16.0);
    }
    ui.vertical_centered(|ui| {
        ui.label(RichText::new(state.t("gui.details.pick")).strong());
        ui.add_space(4.0);
        ui.label(RichText::new(state.t("gui.details.pick_hint")).weak());
    });
    if snap.generation > 0 {
        ui.add_space(16.0);
        ui.separator();
        super::traffic::top_talkers(ui, state, cmds);
    }
}

fn header(ui: &mut Ui, state: &AppState, p: &Program) {
    let dark = ui.visuals().dark_mode;
    let name = for_display(&p.name);
    ui.horizontal(|ui| {
        initial(ui, &name, 40.0);
        ui.vertical(|ui| {
            ui.horizontal(|ui| {
                ui.add(Label::new(RichText::new(&name).heading().strong()).truncate());
                let b = badge(state.mark_of(p), p);
                chip(
                    ui,
                    &state.t(&format!("gui.badge.{}", b.as_str())),
                    theme::badge(b, dark),
                );
                let run = run_state(&state.snapshot, p);
                if run != RunState::Running {
                    chip(
                        ui,
                        &state.t(run.key()),
                        theme::Chip {
                            fill: theme::run_state(run, dark),
                            text: egui::Color32::WHITE,
                        },
                    );
                }
            });
            cut(ui, RichText::new(shown_path(p)).weak());
        });
    });
}

fn warnings(ui: &mut Ui, state: &AppState, p: &Program) {
    let dark = ui.visuals().dark_mode;
    let boxed = |ui: &mut Ui, text: String| {
        let c = theme::danger(dark);
        super::widgets::full_width_box(ui, c.fill, (8, 4), |ui| {
            ui.label(RichText::new(text).color(c.text));
        });
    };
    if p.exe_deleted {
        boxed(ui, state.t("gui.warn.deleted"));
    }
    // A block the guard holds but reads back as not in force: said plainly.
    if let Some(exe) = &p.exe
        && let Some(s) = &state.guard.status
        && s.block(exe).is_some()
        && !s.blocks(exe)
    {
        boxed(ui, state.t("guard.warn.not_enforced"));
    }
    if let Some(old) = p.stale_mark {
        let old = state.t(&format!("gui.badge.{}", old.as_str()));
        boxed(ui, state.t_args("gui.warn.changed", &[("mark", &old)]));
    }
}

fn actions(ui: &mut Ui, state: &AppState, p: &Program, cmds: &mut Vec<Command>) {
    let mark = state.mark_of(p);
    let can_mark = p.exe.is_some() && p.sha256.is_some();
    let run = run_state(&state.snapshot, p);
    // One step that may ask for the password at a time.
    let waiting = state.waiting();
    // Blocking needs the guard service: without one the button says why
    // instead of pretending to work.
    let guard_missing = !state.guard.can_enforce();
    let mark_button = |ui: &mut Ui, cmds: &mut Vec<Command>, m: Mark, key: &str, hint: &str| {
        let no_guard = m == Mark::Blocked && guard_missing;
        let r = ui
            .add_enabled(
                can_mark && !waiting && !no_guard,
                egui::Button::new(state.t(key)).selected(mark == Some(m)),
            )
            .on_hover_text(state.t(hint))
            .on_disabled_hover_text(state.t(if waiting {
                "gui.jobs.waiting"
            } else if no_guard {
                "guard.hint.absent"
            } else {
                "gui.hint.cannot_mark"
            }));
        if r.clicked() {
            cmds.push(Command::SetMark(p.key.clone(), m));
        }
    };
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(state.t("gui.actions.mark")).weak());
        mark_button(
            ui,
            cmds,
            Mark::Trusted,
            "gui.action.trust",
            "gui.hint.trust",
        );
        let dur_name = |d: MarkFor| state.t(&format!("gui.duration.{}", d.as_str()));
        let label = ui.label(state.t("gui.duration"));
        let combo = egui::ComboBox::from_id_salt("trust-duration")
            .selected_text(dur_name(state.trust_duration))
            .show_ui(ui, |ui| {
                for d in MarkFor::ALL {
                    if ui
                        .selectable_label(state.trust_duration == d, dur_name(d))
                        .clicked()
                    {
                        cmds.push(Command::SetTrustDuration(d));
                    }
                }
            });
        combo.response.labelled_by(label.id);
        ui.separator();
        mark_button(
            ui,
            cmds,
            Mark::Unknown,
            "gui.action.unknown",
            "gui.hint.unknown",
        );
        mark_button(
            ui,
            cmds,
            Mark::Blocked,
            "gui.action.block",
            "gui.hint.block",
        );
    });
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(state.t("gui.actions.process")).weak());
        for (action, key, hint) in [
            (
                ProcAction::Suspend,
                "gui.action.suspend",
                "gui.hint.suspend",
            ),
            (ProcAction::Resume, "gui.action.resume", "gui.hint.resume"),
            (
                ProcAction::Terminate,
                "gui.action.terminate",
                "gui.hint.terminate",
            ),
        ] {
            // Only what can be done now: a suspended program can only be
            // resumed (or ended); a running one cannot be resumed.
            let (enabled, why) = match (run, action) {
                (RunState::Ended, _) => (false, "gui.hint.not_running"),
                (RunState::Suspended, ProcAction::Suspend) => (false, "gui.hint.suspended"),
                (RunState::Running, ProcAction::Resume) => (false, "gui.hint.already_running"),
                _ => (true, ""),
            };
            let r = ui
                .add_enabled(enabled, egui::Button::new(state.t(key)))
                .on_hover_text(state.t(hint))
                .on_disabled_hover_text(state.t(why));
            if r.clicked() {
                cmds.push(Command::AskProcess(p.key.clone(), action));
            }
        }
        ui.separator();
        if ui
            .button(state.t("gui.action.report"))
            .on_hover_text(state.t("gui.hint.report"))
            .clicked()
        {
            cmds.push(Command::WriteReport(p.key.clone()));
        }
        if ui
            .button(state.t("gui.action.consult"))
            .on_hover_text(state.t("gui.hint.consult"))
            .clicked()
        {
            cmds.push(Command::Consult(Some(p.key.clone())));
        }
    });
}

fn findings(ui: &mut Ui, state: &AppState, p: &Program) {
    if p.findings.is_empty() {
        ui.label(RichText::new(state.t("gui.findings.none")).weak());
        return;
    }
    let dark = ui.visuals().dark_mode;
    let ended = run_state(&state.snapshot, p) == RunState::Ended;
    let mut list: Vec<_> = p.findings.iter().collect();
    list.sort_by_key(|f| std::cmp::Reverse(f.severity));
    // A small screen (or notices below) keeps room for the table; the
    // box ends between lines, and its scroll bar says there is more.
    let line = ui.text_style_height(&TextStyle::Body) + ui.spacing().item_spacing.y;
    let max = (ui.available_height() * 0.3).clamp(56.0, 170.0);
    // A solid bar, seen without hovering: there is more to read.
    ui.spacing_mut().scroll = egui::style::ScrollStyle::solid();
    ScrollArea::vertical()
        .id_salt("findings")
        .max_height((max / line).floor() * line)
        .scroll_bar_visibility(egui::scroll_area::ScrollBarVisibility::AlwaysVisible)
        .auto_shrink([false, true])
        .show(ui, |ui| {
            for f in list {
                ui.horizontal(|ui| {
                    chip(
                        ui,
                        &state.t(&format!("gui.severity.{}", f.severity.as_str())),
                        if ended {
                            theme::muted(dark)
                        } else {
                            theme::severity(f.severity, dark)
                        },
                    );
                    ui.label(RichText::new(finding_title(state, f)).strong());
                });
                ui.indent(("finding", f.kind.as_str()), |ui| {
                    ui.label(for_display(&f.summary));
                    let key = format!("finding.{}.why", f.kind.as_str());
                    let why = state.t(&key);
                    if why != key {
                        ui.label(
                            RichText::new(state.t_args("gui.findings.why", &[("why", &why)]))
                                .weak(),
                        );
                    }
                });
            }
        });
}

fn tabs(ui: &mut Ui, state: &AppState, p: &Program, cmds: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        let live = p.live_connections().count();
        let tabs = [
            (
                DetailTab::Connections,
                state.t_args(
                    "gui.tab.connections",
                    &[
                        ("live", &live.to_string()),
                        ("all", &p.connections.len().to_string()),
                    ],
                ),
            ),
            (DetailTab::Traffic, state.t("traffic.tab")),
            (DetailTab::About, state.t("gui.tab.about")),
            (DetailTab::History, state.t("gui.tab.history")),
        ];
        for (tab, label) in tabs {
            if ui.selectable_label(state.tab == tab, label).clicked() {
                cmds.push(Command::SetTab(tab));
            }
        }
    });
}

/// State words a parent understands; the kernel's name otherwise.
fn sock_state(state: &AppState, c: &Connection) -> String {
    if !c.live {
        return state.t("gui.sock.ended");
    }
    let key = match c.state {
        SockState::Established => "gui.sock.established",
        SockState::Listen => "gui.sock.listen",
        SockState::Unconn => "gui.sock.unconn",
        SockState::SynSent => "gui.sock.syn_sent",
        SockState::TimeWait | SockState::CloseWait | SockState::FinWait1 | SockState::FinWait2 => {
            "gui.sock.closing"
        }
        other => return other.as_str().to_string(),
    };
    state.t(key)
}

/// The remote column's text: name (else address) and where it is.
fn remote_cell(state: &AppState, c: &Connection) -> String {
    match c.remote {
        Some(r) => crate::names::cell_words_in(
            state.lang,
            r,
            c.remote_name.as_ref().map(|n| n.name.as_str()),
        ),
        None => "—".into(),
    }
}

/// A header of the connections table: a click sorts by it (again:
/// the other way); the sorted one shows its direction.
fn sort_header(ui: &mut Ui, state: &AppState, col: ConnColumn, cmds: &mut Vec<Command>) {
    let sorted = state.conn_sort.column == col;
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = 2.0;
        let r = ui
            .add(
                egui::Button::selectable(sorted, RichText::new(state.t(col.key())).strong())
                    .frame_when_inactive(false),
            )
            .on_hover_text(state.t("gui.conn.sort_hint"));
        if sorted {
            ui.label(
                RichText::new(if state.conn_sort.descending {
                    "▼"
                } else {
                    "▲"
                })
                .small(),
            );
        }
        if r.clicked() {
            cmds.push(Command::SortConnections(col));
        }
    });
}

fn connections(ui: &mut Ui, state: &AppState, p: &Program, cmds: &mut Vec<Command>) {
    if p.connections.is_empty() {
        ui.label(state.t("gui.no_connections"));
        return;
    }
    if let Some(date) = crate::names::geo::data_date() {
        // Where country and owner come from (CC BY asks for the credit).
        ui.label(
            RichText::new(crate::i18n::tr_args_in(
                state.lang,
                "names.data-date",
                &[("date", date)],
            ))
            .weak()
            .small(),
        );
    }
    let dim = theme::ended_text(ui.visuals().dark_mode);
    let off = state.utc_offset;
    let conns = &p.connections;
    let row_h = TABLE_ROW.max(ui.text_style_height(&TextStyle::Body) + 2.0);
    let widths = connection_widths(ui, state, p);
    let mut table = TableBuilder::new(ui)
        .id_salt("connections")
        .striped(true)
        .auto_shrink([false, false]);
    for w in widths {
        // Worked out each frame to fit the pane; cut text shows on hover.
        table = table.column(Column::exact(w).clip(true));
    }
    let order = crate::app::conn_order::order(conns, state.conn_sort);
    table
        .header(22.0, |mut h| {
            for col in ConnColumn::ALL {
                h.col(|ui| {
                    sort_header(ui, state, col, cmds);
                });
            }
        })
        .body(|body| {
            body.rows(row_h, order.len(), |mut row| {
                let c = &conns[order[row.index()]];
                let text = |s: String| {
                    let t = RichText::new(s);
                    if c.live { t } else { t.color(dim) }
                };
                row.col(|ui| {
                    ui.label(text(c.protocol.as_str().to_uppercase()));
                });
                row.col(|ui| {
                    cut(ui, text(addr(&c.local)).monospace());
                });
                row.col(|ui| {
                    // Whom: name first, where it is; the rest on hover.
                    match c.remote {
                        Some(r) => {
                            cut(ui, text(remote_cell(state, c)).monospace()).on_hover_text(
                                crate::names::hover_words_in(
                                    state.lang,
                                    r,
                                    c.remote_name.as_deref(),
                                ),
                            );
                        }
                        None => {
                            cut(ui, text("—".into()).monospace());
                        }
                    }
                });
                row.col(|ui| {
                    cut(ui, text(sock_state(state, c)));
                });
                row.col(|ui| {
                    ui.label(text(clock(c.first_seen, off)));
                });
                row.col(|ui| {
                    ui.label(text(clock(c.last_seen, off)));
                });
            });
        });
}

/// The longest entries of one program's connections in one snapshot
/// and language (kept between frames: a program may hold 10 000).
#[derive(Clone, Default)]
struct Longest {
    generation: u64,
    lang: Option<crate::i18n::Lang>,
    local: String,
    remote: String,
    /// Each state word shown, once.
    states: Vec<String>,
}

fn longest(ui: &Ui, state: &AppState, p: &Program) -> Longest {
    let id = ui.scope_id().with(("conn-longest", &p.key));
    let generation = state.snapshot.generation;
    if let Some(l) = ui.data(|d| d.get_temp::<Longest>(id))
        && l.generation == generation
        && l.lang == Some(state.lang)
    {
        return l;
    }
    let mut l = Longest {
        generation,
        lang: Some(state.lang),
        ..Longest::default()
    };
    for c in &p.connections {
        let local = addr(&c.local);
        if local.chars().count() > l.local.chars().count() {
            l.local = local;
        }
        let remote = remote_cell(state, c);
        if remote.chars().count() > l.remote.chars().count() {
            l.remote = remote;
        }
        let s = sock_state(state, c);
        if !l.states.contains(&s) {
            l.states.push(s);
        }
    }
    ui.data_mut(|d| d.insert_temp(id, l.clone()));
    l
}

/// Column widths of the connections table for the room in this pane:
/// kind and times whole, the addresses and the state cut when the pane is
/// narrow (this computer's address first), the other side gets what is
/// left over.
fn connection_widths(ui: &Ui, state: &AppState, p: &Program) -> Vec<f32> {
    let body = TextStyle::Body.resolve(ui.style());
    let mono = TextStyle::Monospace.resolve(ui.style());
    let width = |text: &str, font: &egui::FontId| {
        ui.ctx().fonts_mut(|f| {
            f.layout_no_wrap(text.to_owned(), font.clone(), egui::Color32::PLACEHOLDER)
                .size()
                .x
        }) + 2.0
    };
    // A header is a button (its padding) with room for the sort arrow.
    let pad = 2.0 * ui.spacing().button_padding.x + 16.0;
    let head = |key: &str| width(&state.t(key), &body) + pad;
    let widest = |texts: &[&str], font: &egui::FontId| {
        texts.iter().map(|t| width(t, font)).fold(0.0, f32::max)
    };
    let l = longest(ui, state, p);
    let time = widest(&["00:00:00", "22:22:22"], &body);
    let states: Vec<&str> = l.states.iter().map(String::as_str).collect();
    // A header is never cut (a user must read what a column is); the
    // addresses under it are, with the whole text on hover.
    let flexible = |header: f32, content: f32, least: f32| Need {
        full: header.max(content),
        least: header.max(content.min(least)),
    };
    let needs = [
        Need::fixed(head("gui.conn.protocol").max(widest(&["TCP", "UDP"], &body))),
        flexible(head("gui.conn.local"), width(&l.local, &mono), 80.0),
        flexible(head("gui.conn.remote"), width(&l.remote, &mono), 100.0),
        flexible(
            head("gui.conn.state"),
            widest(&states, &body),
            head("gui.conn.state"),
        ),
        Need::fixed(head("gui.conn.first").max(time)),
        Need::fixed(head("gui.conn.last").max(time)),
    ];
    // Room for the scroll bar even when it floats: it would cover the times.
    let bar = &ui.spacing().scroll;
    let bar =
        (bar.bar_inner_margin + bar.bar_width + bar.bar_outer_margin).max(bar.allocated_width());
    let avail = ui.available_rect_before_wrap().width() - bar;
    fit(avail, ui.spacing().item_spacing.x, &needs, 2, &[1, 3, 2])
}

fn about(ui: &mut Ui, state: &AppState, p: &Program, cmds: &mut Vec<Command>) {
    let off = state.utc_offset;
    ScrollArea::vertical()
        .id_salt("about")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            Grid::new("about-grid")
                .num_columns(2)
                .spacing([12.0, 6.0])
                .striped(true)
                .show(ui, |ui| {
                    ui.label(RichText::new(state.t("gui.about.path")).strong());
                    cut(ui, shown_path(p));
                    ui.end_row();

                    ui.label(RichText::new("SHA-256").strong());
                    ui.horizontal(|ui| match &p.sha256 {
                        Some(h) => {
                            if ui.button(state.t("gui.about.copy")).clicked() {
                                cmds.push(Command::CopyText(h.clone()));
                            }
                            cut(ui, RichText::new(for_display(h)).monospace());
                        }
                        None => {
                            ui.label(state.t("gui.about.no_hash"));
                        }
                    });
                    ui.end_row();

                    ui.label(RichText::new(state.t("gui.about.user")).strong());
                    ui.label(for_display(&p.user().unwrap_or_else(|| "—".into())));
                    ui.end_row();

                    ui.label(RichText::new(state.t("gui.about.first_seen")).strong());
                    ui.label(date_time(p.first_seen, off));
                    ui.end_row();
                });
            ui.add_space(8.0);
            ui.strong(state.t("gui.about.processes"));
            for x in &p.processes {
                Frame::group(ui.style()).show(ui, |ui| {
                    ui.set_width(ui.available_width());
                    ui.horizontal(|ui| {
                        ui.strong(format!("PID {}", x.pid));
                        if !x.alive {
                            ui.label(RichText::new(state.t("gui.about.exited")).weak());
                        }
                        if x.exe_deleted {
                            ui.label(
                                RichText::new(state.t("gui.about.image_deleted")).color(
                                    theme::severity(
                                        crate::model::Severity::High,
                                        ui.visuals().dark_mode,
                                    )
                                    .fill,
                                ),
                            );
                        }
                        if let Some(u) = &x.user {
                            ui.label(for_display(u));
                        }
                    });
                    let chain = parent_chain(&state.snapshot, x.pid);
                    // Names, never a bare number: PID 1 is the system's
                    // starter; a parent kizuki cannot see is said to be so.
                    let named = |pid: u32, name: &str| {
                        if !name.is_empty() {
                            format!("{name} (PID {pid})")
                        } else if pid == 1 {
                            format!("{} (PID 1)", state.t("gui.parent.system"))
                        } else {
                            format!("{} (PID {pid})", state.t("gui.parent.unknown"))
                        }
                    };
                    let chain_text = if chain.is_empty() {
                        x.parent
                            .map(|pp| named(pp, ""))
                            .unwrap_or_else(|| "—".into())
                    } else {
                        chain
                            .iter()
                            .map(|(pid, name)| named(*pid, name))
                            .collect::<Vec<_>>()
                            .join(" ← ")
                    };
                    ui.horizontal(|ui| {
                        ui.label(RichText::new(state.t("gui.about.parents")).weak());
                        cut(ui, chain_text);
                    });
                    let cmd = x
                        .cmdline
                        .iter()
                        .map(|a| for_display(a))
                        .collect::<Vec<_>>()
                        .join(" ");
                    ui.horizontal(|ui| {
                        ui.label(RichText::new(state.t("gui.about.cmdline")).weak());
                        cut(
                            ui,
                            RichText::new(if cmd.is_empty() { "—".into() } else { cmd })
                                .monospace(),
                        );
                    });
                });
            }
        });
}

fn history_source_key(source: HistorySource) -> &'static str {
    match source {
        HistorySource::GuardAll => "gui.history.source.guard_all",
        HistorySource::GuardOwn => "gui.history.source.guard_own",
        HistorySource::Own => "gui.history.source.own",
    }
}

fn history(ui: &mut Ui, state: &AppState, p: &Program, cmds: &mut Vec<Command>) {
    let loaded = state
        .history
        .as_ref()
        .filter(|(k, _)| *k == p.key)
        .map(|(_, h)| h);
    ui.horizontal(|ui| {
        ui.label(state.t("gui.history.explain"));
        let label = if loaded.is_some() {
            "gui.history.reload"
        } else {
            "gui.history.load"
        };
        if ui.button(state.t(label)).clicked() {
            cmds.push(Command::LoadHistory(p.key.clone()));
        }
    });
    let off = state.utc_offset;
    match loaded {
        None => {}
        Some(History::NoJournal) => {
            ui.label(RichText::new(state.t("gui.history.none")).weak());
        }
        Some(History::Rows { rows, source, more }) => {
            ui.add(
                egui::Label::new(RichText::new(state.t(history_source_key(*source))).weak()).wrap(),
            );
            if rows.is_empty() {
                ui.label(RichText::new(state.t("gui.history.empty")).weak());
                return;
            }
            if *more {
                ui.add(
                    egui::Label::new(RichText::new(
                        state.t_args("gui.history.more", &[("count", &rows.len().to_string())]),
                    ))
                    .wrap(),
                );
            }
            // Whom it talked to comes first after the kind: on a small
            // screen the local side is what gets cut.
            TableBuilder::new(ui)
                .id_salt("history")
                .striped(true)
                .auto_shrink([false, false])
                .column(Column::exact(56.0))
                .column(Column::initial(190.0).clip(true))
                .column(Column::exact(135.0))
                .column(Column::exact(135.0))
                .column(Column::remainder().clip(true))
                .header(22.0, |mut h| {
                    for key in [
                        "gui.conn.protocol",
                        "gui.conn.remote",
                        "gui.conn.first",
                        "gui.conn.last",
                        "gui.conn.local",
                    ] {
                        h.col(|ui| {
                            ui.strong(state.t(key));
                        });
                    }
                })
                .body(|body| {
                    body.rows(TABLE_ROW, rows.len(), |mut row| {
                        let r = &rows[row.index()];
                        row.col(|ui| {
                            ui.label(r.protocol.as_str().to_uppercase());
                        });
                        row.col(|ui| {
                            let remote = r
                                .remote
                                .as_deref()
                                .map(for_display)
                                .unwrap_or_else(|| "—".into());
                            cut(ui, RichText::new(remote).monospace());
                        });
                        row.col(|ui| {
                            ui.label(date_time(r.first_seen, off));
                        });
                        row.col(|ui| {
                            ui.label(date_time(r.last_seen, off));
                        });
                        row.col(|ui| {
                            cut(ui, RichText::new(for_display(&r.local)).monospace());
                        });
                    });
                });
        }
    }
}
