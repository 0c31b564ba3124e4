//! Who asks, and what each role may do: the one table of rights for the pages and the CLI.
//!
//! Seed 002 §8 gives the roles at a school: the responsible organiser keeps the roster, rooms and
//! acts; the interviewer keeps the room log and marks who did not come or finished early; the
//! expert scores and signs. Hub operations (region-wide imports, settlements, publication,
//! exports) are the РЦОИ operator's. The console (the CLI on the node's own machine, through the
//! admin socket or the store) is the node's administrator and may do everything the node may.

use giasync_shared::codes::{PersonId, PersonRole};
use giasync_shared::identity::PersonIdentity;

use super::Error;

/// Who asks for a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The node's administrator at its console: the CLI through the admin socket or the store.
    Console,
    /// A person signed in on the node's pages with their PIN.
    Person(PersonIdentity),
    /// Somebody not signed in: a hub's oversight pages, the public result look-up. Reads only.
    Visitor,
}

/// What a command does, as rights are given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Reading the day, results, status.
    Read,
    /// The roster: importing, correcting a participant, rooms, assignments.
    EditRoster,
    /// Attendance: «Н», finished early, removed.
    Mark,
    /// The room log: start and end of an answer.
    Log,
    /// Signing and handing in a score sheet.
    Score,
    /// Signing a participant's familiarisation with their result.
    Familiarise,
    /// Signing an act that ends an attempt (early completion, removal).
    WriteAct,
    /// The hubs' work: region-wide imports, settlements, publication, exports.
    Operate,
    /// Signing the school's commission order (the head of the school).
    SignCommission,
    /// Taking in the recordings of answers (the technical specialist, seed 002 §52).
    AddRecording,
    /// Opening the exam materials with a reserve code (the technical specialist, §30).
    OpenMaterials,
    /// Signing the readiness act (the technical specialist, §26).
    SignReadiness,
    /// Settling a conflict for the school's commission (its chair, the head, or an expert; the
    /// year's data and the record's verification narrow it further).
    Settle,
    /// Asking the РЦОИ for another school's participant's recording, and signing the re-check
    /// protocol (the head of the reviewing school, chair of its commission, seed 002 §71–72).
    Recheck,
    /// Opening a colleague's first sign-in on this machine, where they make their key from the
    /// РЦОИ's enrolment code (the technical specialist, or the head).
    EnrolPerson,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Action::Read => "read the day",
            Action::EditRoster => "change the roster",
            Action::Mark => "mark attendance",
            Action::Log => "keep the room log",
            Action::Score => "score",
            Action::Familiarise => "sign familiarisation",
            Action::WriteAct => "sign an act",
            Action::Operate => "operate the hub",
            Action::SignCommission => "sign the commission order",
            Action::AddRecording => "take in recordings",
            Action::OpenMaterials => "open the exam materials",
            Action::SignReadiness => "sign the readiness act",
            Action::Settle => "settle a conflict for the commission",
            Action::Recheck => "request or sign a re-check",
            Action::EnrolPerson => "open a colleague's first sign-in",
        })
    }
}

impl Action {
    /// Whether a person of `role` may do this.
    #[must_use]
    pub fn allowed(self, role: PersonRole) -> bool {
        use PersonRole::{Corridor, Expert, Head, Interviewer, Operator, Organiser, Technician};
        match self {
            Action::Read => true,
            Action::EditRoster | Action::Familiarise | Action::WriteAct => role == Organiser,
            Action::Mark => matches!(role, Organiser | Interviewer | Corridor),
            Action::Log => role == Interviewer,
            Action::Score => role == Expert,
            Action::Operate => role == Operator,
            Action::SignCommission | Action::Recheck => role == Head,
            Action::AddRecording => matches!(role, Technician | Organiser),
            Action::OpenMaterials | Action::SignReadiness => role == Technician,
            Action::Settle => matches!(role, Head | Expert),
            Action::EnrolPerson => matches!(role, Technician | Head),
        }
    }
}

impl Actor {
    /// `Ok` when this actor may do `action`, else the typed refusal.
    pub fn may(&self, action: Action) -> Result<(), Error> {
        match self {
            Actor::Console => Ok(()),
            Actor::Person(p) if action.allowed(p.role) => Ok(()),
            Actor::Person(p) => Err(Error::Forbidden {
                role: Some(p.role),
                action,
            }),
            Actor::Visitor if action == Action::Read => Ok(()),
            Actor::Visitor => Err(Error::Forbidden { role: None, action }),
        }
    }

    /// `Ok` when this actor may hand in a record signed by `signer`: the console hands in what
    /// anyone signed on its machine; a person only what they signed themselves.
    pub fn may_hand_in(&self, signer: PersonId) -> Result<(), Error> {
        match self {
            Actor::Person(p) if p.id != signer => Err(Error::NotTheSigner {
                person: p.id,
                signer,
            }),
            _ => Ok(()),
        }
    }
}
