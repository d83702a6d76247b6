//! "Something looks wrong": the consultation contacts, the six-step
//! walk-through, links to call, mail or visit a desk, and the way those
//! links are opened. The wizard and `kizuki contacts` both use this.

mod contacts;
mod links;
mod opener;
mod steps;
mod text;

pub use contacts::{
    BUILTIN, Contact, Contacts, ContactsError, OVERRIDE_FILE, Verification, Warning,
};
pub use links::{Link, LinkKind, contact_links, mailto_uri, tel_uri, web_uri};
pub use opener::{Opener, RecordingOpener, SystemOpener};
pub use steps::{
    Action, ActionId, ContactField, ContactView, STEP_IDS, Step, checklist, mail_body,
    mail_subject, steps,
};
pub use text::{contacts_json, contacts_text};
