//! The "相談する" walk-through: one screen per step, drawn from
//! [`consult::steps`], in a dialog over the window. Views only: every
//! click becomes a [`Command`].

use egui::{
    Align, Button, Color32, ComboBox, CornerRadius, Frame, Id, Key, Layout, Margin, Modal,
    RichText, ScrollArea, Ui,
};

use super::report_box;
use super::theme;
use crate::app::guard::{problem_detail, problem_sentence};
use crate::app::programs::{attention, shown_path};
use crate::app::wizard::STEPS;
use crate::app::{AppState, BannerLevel, Command, ConsultCommand, ProcAction, Wizard};
use crate::consult::{self, ActionId, ContactView, Step, Verification};
use crate::escape::for_display;
use crate::guard::outcome::Action;
use crate::i18n::Lang;
use crate::model::Program;

/// The paragraph of the "stop" step that says not to power off
/// (`consult.step.stop.body.3`).
const STOP_POWER_PARAGRAPH: usize = 2;

/// Size of the fine print (sources, dates): small but readable.
const FINE_PRINT: f32 = 12.0;

fn wiz(c: ConsultCommand) -> Command {
    Command::Wizard(c)
}

pub fn show(ui: &mut Ui, state: &AppState, cmds: &mut Vec<Command>) {
    let Some(w) = &state.wizard else {
        return;
    };
    let steps = consult::steps(&state.contacts, state.lang, w.preview.as_deref());
    let Some(step) = steps.get(w.step.min(steps.len().saturating_sub(1))) else {
        return;
    };
    let screen = ui.ctx().content_rect();
    let width = (screen.width() - 60.0).clamp(340.0, 800.0);
    let body_height = (screen.height() - 250.0).clamp(180.0, 560.0);
    let resp = Modal::new(Id::unique("consult-wizard")).show(ui.ctx(), |ui| {
        ui.set_width(width);
        header(ui, state, w, cmds);
        ui.separator();
        ScrollArea::vertical()
            .id_salt(("wizard-body", w.step))
            .max_height(body_height)
            .min_scrolled_height(body_height)
            .auto_shrink([false, false])
            .show(ui, |ui| {
                ui.set_width(ui.available_width() - 12.0);
                body(ui, state, w, step, cmds);
            });
        ui.separator();
        latest_news(ui, state, w, cmds);
        footer(ui, state, w, cmds);
    });
    // Escape closes; a stray click beside the dialog does not.
    if resp.should_close() && ui.input(|i| i.key_pressed(Key::Escape)) {
        cmds.push(wiz(ConsultCommand::Close));
    }
}

fn header(ui: &mut Ui, state: &AppState, w: &Wizard, cmds: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        ui.heading(RichText::new(state.t("wizard.title")).strong());
        ui.label(
            RichText::new(state.t_args(
                "wizard.step_of",
                &[
                    ("n", &(w.step + 1).to_string()),
                    ("total", &STEPS.to_string()),
                ],
            ))
            .weak(),
        );
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            for (lang, label) in [(Lang::En, "English"), (Lang::Ja, "日本語")] {
                if ui.selectable_label(state.lang == lang, label).clicked() {
                    cmds.push(Command::SetLang(lang));
                }
            }
        });
    });
    ui.add_space(2.0);
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing.x = 4.0;
        for (i, id) in consult::STEP_IDS.iter().enumerate() {
            if i > 0 {
                ui.label(RichText::new("→").weak());
            }
            let text = format!("{} {}", i + 1, state.t(&format!("wizard.short.{id}")));
            let text = if i == w.step {
                RichText::new(text).strong()
            } else {
                RichText::new(text)
            };
            if ui.selectable_label(i == w.step, text).clicked() {
                cmds.push(wiz(ConsultCommand::GoTo(i)));
            }
        }
    });
    ui.add_space(2.0);
    program_picker(ui, state, w, cmds);
}

/// Which program the walk-through is about: the ones needing attention
/// first.
fn program_picker(ui: &mut Ui, state: &AppState, w: &Wizard, cmds: &mut Vec<Command>) {
    let mut programs: Vec<&Program> = state.snapshot.programs.iter().collect();
    programs.sort_by_cached_key(|p| {
        (
            std::cmp::Reverse(attention(state.mark_of(p), p)),
            p.name.to_lowercase(),
        )
    });
    let current = w
        .program
        .as_ref()
        .and_then(|k| state.snapshot.program(k))
        .map(|p| for_display(&p.name))
        .unwrap_or_else(|| state.t("wizard.program.none"));
    ui.horizontal(|ui| {
        let label = ui.label(state.t("wizard.program"));
        ComboBox::from_id_salt("wizard-program")
            .selected_text(current)
            .width(260.0)
            .show_ui(ui, |ui| {
                if ui
                    .selectable_label(w.program.is_none(), state.t("wizard.program.none"))
                    .clicked()
                {
                    cmds.push(wiz(ConsultCommand::About(None)));
                }
                for p in programs {
                    let chosen = w.program.as_ref() == Some(&p.key);
                    if ui
                        .selectable_label(chosen, for_display(&p.name))
                        .on_hover_text(shown_path(p))
                        .clicked()
                    {
                        cmds.push(wiz(ConsultCommand::About(Some(p.key.clone()))));
                    }
                }
            })
            .response
            .labelled_by(label.id);
    });
    if w.program.is_none() {
        ui.label(
            RichText::new(state.t("wizard.program.hint"))
                .weak()
                .size(FINE_PRINT),
        );
    }
}

fn body(ui: &mut Ui, state: &AppState, w: &Wizard, step: &Step, cmds: &mut Vec<Command>) {
    ui.add_space(4.0);
    ui.heading(RichText::new(format!("{}. {}", step.number, step.title)).strong());
    ui.add_space(4.0);
    for (i, para) in step.body.iter().enumerate() {
        // "Do not power off" is the one people get wrong: make it stand out.
        if step.id == "stop" && i == STOP_POWER_PARAGRAPH {
            note(ui, BannerLevel::Warning, para);
        } else {
            ui.label(para);
        }
        ui.add_space(2.0);
    }
    ui.add_space(4.0);
    match step.id {
        "stop" => stop_actions(ui, state, w, cmds),
        "report" => report_actions(ui, state, w, cmds),
        _ => {}
    }
    if let Some(warning) = &step.warning {
        warning_box(ui, state, warning);
    }
    let (first, rest) = if step.id == "ipa" {
        step.contacts.split_at(step.contacts.len().min(1))
    } else {
        (&step.contacts[..], &[][..])
    };
    for c in first {
        contact_card(ui, state, c, cmds);
    }
    if !step.checklist.is_empty() {
        checklist(ui, state, step, cmds);
    }
    if !rest.is_empty() {
        egui::CollapsingHeader::new(state.t("wizard.more_contacts"))
            .id_salt("wizard-more-contacts")
            .show(ui, |ui| {
                for c in rest {
                    contact_card(ui, state, c, cmds);
                }
            });
    }
    if let Some(checked) = &step.checked_on {
        ui.add_space(4.0);
        ui.label(RichText::new(checked).weak().size(FINE_PRINT));
    }
}

/// A filled button that stands out (the panic button).
fn strong_button(ui: &mut Ui, text: &str, fill: Color32) -> egui::Response {
    ui.add(
        Button::new(RichText::new(text).strong().color(Color32::WHITE))
            .fill(fill)
            .corner_radius(CornerRadius::same(6))
            .min_size(egui::vec2(0.0, 30.0)),
    )
}

fn stop_actions(ui: &mut Ui, state: &AppState, w: &Wizard, cmds: &mut Vec<Command>) {
    let dark = ui.visuals().dark_mode;
    // The same truth as the tray and the top bar.
    let panic_on = state.background.panic;
    let waiting = state.waiting();
    ui.horizontal_wrapped(|ui| {
        let red = theme::severity(crate::model::Severity::High, dark).fill;
        // Stopping traffic needs the guard service: without one the
        // button says why (and what to do instead).
        let guard = state.guard.can_enforce();
        ui.add_enabled_ui(!waiting && guard, |ui| {
            if strong_button(ui, &state.t("consult.action.panic"), red)
                .on_hover_text(state.t("wizard.panic.hint"))
                .on_disabled_hover_text(state.t(if waiting {
                    "gui.jobs.waiting"
                } else {
                    "guard.hint.panic_absent"
                }))
                .clicked()
            {
                cmds.push(wiz(ConsultCommand::Panic(true)));
            }
            if panic_on
                && ui
                    .button(state.t("wizard.panic.off"))
                    .on_disabled_hover_text(state.t("gui.jobs.waiting"))
                    .clicked()
            {
                cmds.push(wiz(ConsultCommand::Panic(false)));
            }
        });
    });
    if waiting {
        super::chrome::waiting(ui, state);
    }
    if let Some(p) = &state.panic {
        match (&p.not_enforced, p.on) {
            (Some(why), on) => {
                let action = if on { Action::Panic } else { Action::Resume };
                let mut text = problem_sentence(state.lang, action, "", why);
                if on {
                    if state.lang == crate::i18n::Lang::En {
                        text.push(' ');
                    }
                    text.push_str(&state.t("window.panic.urgent"));
                }
                let c = theme::banner(BannerLevel::Error, ui.visuals().dark_mode);
                super::widgets::full_width_box(ui, c.fill, (10, 6), |ui| {
                    ui.label(RichText::new(text).color(c.text));
                    if let Some(d) = problem_detail(why) {
                        super::notice::details(ui, "panic-detail", &d, state.lang, c.text);
                    }
                });
            }
            (None, true) => note(ui, BannerLevel::Warning, &state.t("wizard.panic.on_done")),
            (None, false) => note(ui, BannerLevel::Info, &state.t("wizard.panic.off_done")),
        }
    }
    ui.add_space(6.0);
    let program = w.program.as_ref().and_then(|k| state.snapshot.program(k));
    let alive = program.is_some_and(|p| p.processes.iter().any(|x| x.alive));
    let hint = match program {
        None => state.t("wizard.suspend.none"),
        Some(_) if !alive => state.t("gui.hint.not_running"),
        Some(_) => state.t("gui.hint.suspend"),
    };
    let r = ui
        .add_enabled(alive, Button::new(state.t("consult.action.suspend")))
        .on_hover_text(&hint)
        .on_disabled_hover_text(&hint);
    if r.clicked()
        && let Some(p) = program
    {
        cmds.push(Command::AskProcess(p.key.clone(), ProcAction::Suspend));
    }
    if program.is_none() {
        ui.label(RichText::new(hint).weak().size(FINE_PRINT));
    }
    ui.add_space(6.0);
}

fn report_actions(ui: &mut Ui, state: &AppState, w: &Wizard, cmds: &mut Vec<Command>) {
    let mut consent = state.evidence_consent;
    if ui
        .checkbox(&mut consent, state.t("consult.action.evidence_copy"))
        .changed()
    {
        cmds.push(wiz(ConsultCommand::SetEvidenceConsent(consent)));
    }
    ui.indent("consent-hint", |ui| {
        ui.label(
            RichText::new(state.t("wizard.consent.hint"))
                .weak()
                .size(FINE_PRINT),
        );
    });
    ui.add_space(4.0);
    let has_program = w
        .program
        .as_ref()
        .is_some_and(|k| state.snapshot.program(k).is_some());
    let r = ui
        .add_enabled(
            has_program,
            Button::new(RichText::new(state.t("consult.action.save_report")).strong())
                .min_size(egui::vec2(0.0, 28.0)),
        )
        .on_disabled_hover_text(state.t("wizard.report.none"));
    if r.clicked() {
        cmds.push(wiz(ConsultCommand::SaveReport));
    }
    if !has_program {
        ui.label(
            RichText::new(state.t("wizard.report.none"))
                .weak()
                .size(FINE_PRINT),
        );
    }
    if let Some(saved) = &state.last_report
        && (w.program.is_none() || w.program.as_ref() == Some(&saved.key))
    {
        ui.add_space(4.0);
        report_box::show(ui, state, saved, cmds);
    }
    ui.add_space(6.0);
}

/// A coloured box with one text.
fn note(ui: &mut Ui, level: BannerLevel, text: &str) {
    let c = theme::banner(level, ui.visuals().dark_mode);
    super::widgets::full_width_box(ui, c.fill, (10, 6), |ui| {
        ui.label(RichText::new(text).color(c.text));
    });
}

fn warning_box(ui: &mut Ui, state: &AppState, warning: &str) {
    let c = theme::danger(ui.visuals().dark_mode);
    ui.add_space(4.0);
    super::widgets::full_width_box(ui, c.fill, (12, 8), |ui| {
        ui.label(
            RichText::new(state.t("consult.warning.title"))
                .strong()
                .color(c.text),
        );
        ui.label(RichText::new(for_display(warning)).color(c.text));
    });
    ui.add_space(6.0);
}

fn contact_card(ui: &mut Ui, state: &AppState, c: &ContactView, cmds: &mut Vec<Command>) {
    let fill = ui.visuals().faint_bg_color;
    Frame::new()
        .fill(fill)
        .stroke(ui.visuals().widgets.noninteractive.bg_stroke)
        .corner_radius(6)
        .inner_margin(Margin::symmetric(12, 8))
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.label(RichText::new(for_display(&c.name)).strong().size(16.0));
            for f in &c.fields {
                ui.horizontal_wrapped(|ui| {
                    ui.label(RichText::new(format!("{}:", f.label)).weak());
                    let value = for_display(&f.value);
                    match &f.link {
                        Some(link) => {
                            let hover = link_hint(state, c, f.kind, &link.label);
                            // Phone numbers big, still in link colour.
                            let text = if f.kind == "phone" {
                                RichText::new(&value)
                                    .size(17.0)
                                    .color(ui.visuals().hyperlink_color)
                            } else {
                                RichText::new(&value)
                            };
                            if ui.link(text).on_hover_text(hover).clicked() {
                                cmds.push(wiz(ConsultCommand::OpenLink(link.uri.clone())));
                            }
                            if ui
                                .small_button(state.t("wizard.copy"))
                                .on_hover_text(
                                    state.t_args("wizard.copy.hint", &[("value", &value)]),
                                )
                                .clicked()
                            {
                                cmds.push(Command::CopyText(f.value.clone()));
                            }
                        }
                        None => {
                            ui.label(value);
                        }
                    }
                    if f.unverified {
                        ui.label(RichText::new(state.t("consult.unverified")).weak());
                    }
                });
            }
            if c.verification != Verification::Yes {
                let word = state.t(&format!(
                    "consult.verification.{}",
                    match c.verification {
                        Verification::Yes => "yes",
                        Verification::Partial => "partial",
                        Verification::No => "no",
                    }
                ));
                ui.label(
                    RichText::new(state.t_args("wizard.verification", &[("state", &word)]))
                        .weak()
                        .size(FINE_PRINT),
                );
            }
            if let Some(src) = &c.source {
                ui.label(
                    RichText::new(format!(
                        "{}: {}",
                        state.t("consult.source"),
                        for_display(src)
                    ))
                    .weak()
                    .size(FINE_PRINT),
                );
            }
        });
    ui.add_space(6.0);
}

/// "Call …", "Mail …", "Open …": what clicking the link does.
fn link_hint(state: &AppState, c: &ContactView, kind: &str, value: &str) -> String {
    let action = match kind {
        "phone" => ActionId::Tel,
        "email" => ActionId::Mailto,
        _ => ActionId::OpenUrl,
    };
    state.t_args(
        &format!("consult.action.{}", action.as_str()),
        &[
            ("name", &for_display(&c.name)),
            ("value", &for_display(value)),
        ],
    )
}

fn checklist(ui: &mut Ui, state: &AppState, step: &Step, cmds: &mut Vec<Command>) {
    ui.add_space(4.0);
    ui.label(RichText::new(state.t("consult.ready.title")).strong());
    for item in &step.checklist {
        ui.horizontal_wrapped(|ui| {
            ui.label("・");
            ui.label(for_display(item));
        });
    }
    if step.actions.iter().any(|a| a.id == ActionId::CopySummary)
        && ui.button(state.t("consult.action.copy_summary")).clicked()
    {
        cmds.push(wiz(ConsultCommand::CopySummary));
    }
    ui.add_space(6.0);
}

/// The newest notice raised while the walk-through is open ("copied",
/// "could not open …"): the window's own notices are behind the dialog.
fn latest_news(ui: &mut Ui, state: &AppState, w: &Wizard, cmds: &mut Vec<Command>) {
    let Some(b) = state
        .banners
        .iter()
        .filter(|b| b.id >= w.since_banner)
        .max_by_key(|b| b.id)
    else {
        return;
    };
    let r = super::notice::notice(ui, b, state.lang, ui.available_width());
    if r.closed {
        cmds.push(Command::DismissBanner(b.id));
    }
}

fn footer(ui: &mut Ui, state: &AppState, w: &Wizard, cmds: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        if ui
            .add_enabled(w.step > 0, Button::new(state.t("consult.back")))
            .clicked()
        {
            cmds.push(wiz(ConsultCommand::Back));
        }
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            if w.step + 1 < STEPS {
                if ui
                    .add(Button::new(RichText::new(state.t("consult.next")).strong()))
                    .clicked()
                {
                    cmds.push(wiz(ConsultCommand::Next));
                }
                if ui.button(state.t("consult.close")).clicked() {
                    cmds.push(wiz(ConsultCommand::Close));
                }
            } else if ui
                .add(Button::new(
                    RichText::new(state.t("consult.close")).strong(),
                ))
                .clicked()
            {
                cmds.push(wiz(ConsultCommand::Close));
            }
        });
    });
}
