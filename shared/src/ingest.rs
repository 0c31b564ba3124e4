//! Verification on ingest at the РЦОИ: every score sheet that arrives in a school's protocol is
//! checked (signature, the expert certified for that school and not revoked when signing, total
//! and result recomputed from the year's rules) in batches, and the verdict is written as a
//! receipt into the school's РЦОИ document (only the РЦОИ may write it), which flows back down to
//! the school.
//!
//! The production node and the simulator both call [`receipt_new_sheets_of`] with the protocols
//! every batch of changes they apply touched, so a sheet is verified once, when it first
//! arrives (one receipted invalid may be again: below), and the sheets of all those schools
//! share the signature batches.
//!
//! A sheet's `signed_at` is what its signer claims. What depends on time is judged on receipt
//! against the РЦОИ's own clock, which no signer controls ([`Refusal`]): the sheet must be signed
//! between the exam's day and the last day of its scoring in the region's calendar (the year's
//! data, [`SigningTime`]: for итоговое собеседование 5 calendar days after the exam, seed 002
//! §67, so participants with РАС are scored from the recording after the day, §60) and not
//! after it arrived, and its expert's
//! certificate must not have been revoked before it arrived, whatever `signed_at` says. So a
//! revoked expert's key, or one cracked from a copied key file, signs nothing that counts by
//! dating it earlier. Every node that holds the receipt counts such a sheet invalid
//! (`crate::settlement::resolve_protocol`).
//!
//! The category a sheet scores by is judged the same way, against the regional register in the
//! school's РЦОИ document (`content::put_registered`): the category decides the criteria and the
//! pass mark, and a school may write its roster, so only the category of record counts. A sheet
//! for a participant the register does not hold, or by another category, is refused on receipt.
//!
//! A sheet receipted invalid (`invalid: REASON`, [`Receipt::Invalid`]) is judged again, as
//! arriving now, in the first receipt pass after the school changed the experts' certificates
//! its protocol carries, and in the first after the node started (its CA, revocation list and
//! software may be others then; `Engine::invalid_judged_against` is kept in memory only). What
//! such a verdict depends on besides the sheet, which its hash fixes, is its expert's
//! certificate, which the school writes, and what the РЦОИ checks it with. Without this, a
//! school could store a sheet beside junk under its expert's entry, have it receipted invalid
//! for its signer, then put the real certificate there: every node would count the sheet,
//! checked afresh, without the checks on receipt ([`Refusal`]) ever made. Judged again, it
//! passes them as arriving now or is refused on receipt, which binds every node, so a school
//! gains nothing it could not by handing the sheet in afresh. And a verdict written from the
//! РЦОИ's own passing state (a CA not yet installed) is undone at its next start. A receipt is
//! written again only when the sheet no longer reads invalid (another reason for the same
//! verdict is not written), and a pass decodes the sheets receipted invalid only when they are
//! due. What a school can still make the РЦОИ do: judge its invalid sheets again at every
//! change of its experts' certificates, at the cost of checking each sheet once more.

use std::collections::BTreeMap;

use crate::calendar::{Date, Timestamp, UtcOffset};
use crate::codes::{OrgCode, ParticipantId, PersonId};
use crate::content;
use crate::participant::Category;
use crate::record::{RecordHash, SignerDirectory, VerifiedSheet, verify_groups};
use crate::rules::Rules;
use crate::sync::{DocId, DocKind, Engine, EngineError};

/// The verdict a receipt records for a sheet that verifies.
pub const RECEIPT_VERIFIED: &str = "verified";

/// How far ahead of the РЦОИ's clock a sheet may be signed (clocks differ by minutes); further
/// ahead is refused.
pub const SIGNED_AHEAD_MS_MAX: i64 = 5 * 60_000;

/// What the checks of time on receipt are judged on: the region's clock, and the days the sheets
/// of an exam may be signed on, from the year's data.
#[derive(Debug, Clone, Copy)]
pub struct SigningTime<'a> {
    pub clock: UtcOffset,
    pub year: &'a crate::year::YearData,
    pub calendar: &'a crate::workdays::ProductionCalendar,
}

impl SigningTime<'_> {
    /// The first and last day the sheets of `exam` may be signed on: the exam's day, and the
    /// last day of its scoring (`YearData::last_scoring_day`).
    #[must_use]
    pub fn days(&self, exam: crate::exam::ExamId) -> (Date, Date) {
        (exam.date(), self.year.last_scoring_day(exam, self.calendar))
    }
}

/// Why the РЦОИ refuses on receipt a sheet whose signature and score verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The sheet is for another exam or school than the protocol it arrived in. Everything
    /// else is judged by the sheet's own subject (its day, the commission order, the acts, the
    /// attempts), so such a sheet would be judged against an exam no order or act covers: a
    /// date made up would pass every check. Judged first.
    #[error(
        "the sheet is for exam {exam} at school {school}, but it arrived in the protocol {protocol}"
    )]
    NotOfTheProtocol {
        exam: crate::exam::ExamId,
        school: crate::codes::SchoolCode,
        protocol: DocId,
    },
    /// Signed before the exam's day or after the last day of its scoring
    /// ([`SigningTime::days`]).
    #[error(
        "signed at {signed_at}, not between the exam's day {first} and the last day of its scoring {last} in the region's calendar"
    )]
    OutsideScoringDays {
        signed_at: Timestamp,
        first: Date,
        last: Date,
    },
    #[error("signed at {signed_at}, after the РЦОИ received it at {received}")]
    SignedAfterReceipt {
        signed_at: Timestamp,
        received: Timestamp,
    },
    #[error(
        "expert {expert}'s certificate was revoked at {revoked_at}, before the РЦОИ received the sheet at {received}"
    )]
    RevokedBeforeReceipt {
        expert: PersonId,
        revoked_at: Timestamp,
        received: Timestamp,
    },
    /// The participant is not in the regional register of the school (the РЦОИ's document), so
    /// nothing vouches for the category the sheet was scored by.
    #[error("participant {participant} is not in the regional register of the school")]
    NotRegistered { participant: ParticipantId },
    /// The sheet scores the participant by another category than the category of record, so by
    /// other criteria and another pass mark than the register's.
    #[error(
        "the sheet scores participant {participant} as {sheet}, but the category of record is {of_record}"
    )]
    CategoryNotOfRecord {
        participant: ParticipantId,
        sheet: Category,
        of_record: Category,
    },
    /// The organiser ended the attempt with an act (`crate::act`): it is not scored.
    #[error("attempt {attempt} of participant {participant} was ended by act № {number}: {kind}")]
    EndedByAct {
        participant: ParticipantId,
        attempt: u8,
        number: String,
        kind: crate::act::ActKind,
    },
    /// The attempt is not one of this date's for the participant: before their first attempt
    /// here (an earlier date's), or after it without an act for a bad recording opening it
    /// (`crate::retake`).
    #[error(
        "attempt {attempt} of participant {participant} is not an attempt of this date: it opens with attempt {first}, and only an act for a bad recording opens the next"
    )]
    AttemptNotOfTheDate {
        participant: ParticipantId,
        attempt: u8,
        first: u8,
    },
    /// The school's commission order names the expert for no such room (`crate::commission`).
    #[error("expert {expert} is not an expert of room {room} in the school's commission order")]
    ExpertNotOfRoom {
        expert: PersonId,
        room: crate::codes::RoomCode,
    },
}

/// A receipt as the РЦОИ's document stores it, by its text form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// `verified`
    Verified,
    /// `invalid: REASON`: the sheet itself does not verify.
    Invalid(String),
    /// `invalid on receipt: REASON`: it verifies, but not at the time it arrived ([`Refusal`]).
    RefusedOnReceipt(String),
}

impl Receipt {
    const INVALID: &'static str = "invalid: ";
    const ON_RECEIPT: &'static str = "invalid on receipt: ";

    /// Its stored text.
    #[must_use]
    pub fn text(&self) -> String {
        match self {
            Receipt::Verified => RECEIPT_VERIFIED.to_owned(),
            Receipt::Invalid(reason) => format!("{}{reason}", Self::INVALID),
            Receipt::RefusedOnReceipt(reason) => format!("{}{reason}", Self::ON_RECEIPT),
        }
    }

    /// Whether a stored text reads as [`Receipt::Invalid`] ([`Receipt::read`]), without
    /// reading it: a receipt pass asks it of every receipt of the school.
    #[must_use]
    pub fn is_invalid(text: &str) -> bool {
        text != RECEIPT_VERIFIED && !text.starts_with(Self::ON_RECEIPT)
    }

    /// Reads a stored text. Anything else than the three forms reads as invalid, with the text
    /// as the reason.
    #[must_use]
    pub fn read(text: &str) -> Self {
        if text == RECEIPT_VERIFIED {
            Receipt::Verified
        } else if let Some(reason) = text.strip_prefix(Self::ON_RECEIPT) {
            Receipt::RefusedOnReceipt(reason.to_owned())
        } else {
            Receipt::Invalid(text.strip_prefix(Self::INVALID).unwrap_or(text).to_owned())
        }
    }
}

/// What a sheet is judged against besides itself: the regional register in the school's РЦОИ
/// document and the attempts the protocol's acts ended.
#[derive(Debug)]
pub struct Standing<'a, R> {
    pub register: Option<&'a R>,
    /// The same register read in one walk ([`RegisterRead`]), when it was: looked up instead of
    /// `register`, entry by entry.
    pub register_read: Option<&'a RegisterRead>,
    pub ended: &'a BTreeMap<crate::record::SheetSubject, crate::act::Act>,
    /// The school's commission orders that verify (`crate::commission`).
    pub orders: &'a crate::commission::Orders,
}

/// A pass receipting at least this many sheets of one school reads the school's register in one
/// walk ([`RegisterRead`]) rather than looking up two entries per sheet; fewer (a sheet or two
/// as they trickle in) look them up.
pub const REGISTER_WALK_SHEETS_MIN: usize = 16;

/// A school's regional register as read in one walk over its `reg/` entries: each participant's
/// category of record and first attempt here, as `content::registered_category` and
/// `content::registered_attempt` read them one by one.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RegisterRead {
    entries: BTreeMap<String, (Option<Category>, Option<crate::record::Attempt>)>,
}

impl RegisterRead {
    /// Reads the register in `rcoi` (a school's РЦОИ document).
    pub fn read(rcoi: &impl automerge::ReadDoc) -> Self {
        let mut entries: BTreeMap<String, (Option<Category>, Option<crate::record::Attempt>)> =
            BTreeMap::new();
        content::for_each_field(rcoi, "reg/", |participant, field, value| {
            let Some(text) = content::text_of(value) else {
                return;
            };
            match field {
                "category" => {
                    let entry = entries.entry(participant.to_owned()).or_default();
                    entry.0 = text.parse().ok();
                }
                "attempt" => {
                    let entry = entries.entry(participant.to_owned()).or_default();
                    entry.1 = text
                        .parse::<u8>()
                        .ok()
                        .and_then(|n| crate::record::Attempt::new(n).ok());
                }
                _ => {}
            }
        });
        RegisterRead { entries }
    }

    /// The participant's category of record, if the register gives one.
    #[must_use]
    pub fn category(&self, participant: ParticipantId) -> Option<Category> {
        self.entries.get(participant.as_str()).and_then(|e| e.0)
    }

    /// The participant's first attempt on `exam`'s date: the register's, else
    /// `retake::attempt_by_date` (as `retake::first_attempt`).
    #[must_use]
    pub fn first_attempt(
        &self,
        participant: ParticipantId,
        exam: crate::exam::ExamId,
    ) -> crate::record::Attempt {
        self.entries
            .get(participant.as_str())
            .and_then(|e| e.1)
            .unwrap_or_else(|| crate::retake::attempt_by_date(exam))
    }
}

impl<R: automerge::ReadDoc> Standing<'_, R> {
    /// Why `sheet` does not count as things stand: its attempt was ended by an act, is not one
    /// of this date's (`crate::retake`), its expert is not of its room by the commission order
    /// (`crate::commission`), or it scores by another category than the register's. A participant the register does not list is
    /// refused only when `listed_only` (on receipt: the register must vouch for every sheet;
    /// when resolving, sheets receipted before the register existed keep their receipt).
    pub fn refusal(&self, sheet: &crate::record::ScoreSheet, listed_only: bool) -> Option<Refusal> {
        let participant = sheet.subject.participant;
        if let Some(act) = self.ended.get(&sheet.subject) {
            return Some(Refusal::EndedByAct {
                participant,
                attempt: act.attempt.get(),
                number: act.number.as_str().to_owned(),
                kind: act.kind,
            });
        }
        let first = match self.register_read {
            Some(read) => read.first_attempt(participant, sheet.subject.exam),
            None => crate::retake::first_attempt(self.register, participant, sheet.subject.exam),
        };
        let acts = crate::retake::acts_of(
            self.ended,
            (sheet.subject.exam, sheet.subject.school),
            participant,
        );
        if !crate::retake::attempt_belongs(sheet.subject.attempt, first, &acts) {
            return Some(Refusal::AttemptNotOfTheDate {
                participant,
                attempt: sheet.subject.attempt.get(),
                first: first.get(),
            });
        }
        let subject = &sheet.subject;
        if !self
            .orders
            .may_score((subject.exam, subject.school), sheet.expert, sheet.room)
        {
            return Some(Refusal::ExpertNotOfRoom {
                expert: sheet.expert,
                room: sheet.room,
            });
        }
        let of_record = match self.register_read {
            Some(read) => read.category(participant),
            None => self
                .register
                .and_then(|r| content::registered_category(r, participant.as_str())),
        };
        match of_record {
            None if listed_only => Some(Refusal::NotRegistered { participant }),
            None => None,
            Some(of_record) if of_record != sheet.category => Some(Refusal::CategoryNotOfRecord {
                participant,
                sheet: sheet.category,
                of_record,
            }),
            Some(_) => None,
        }
    }
}

/// Why a sheet of `subject` does not belong in `protocol`: its exam or school is another.
fn not_of_the_protocol(protocol: DocId, subject: &crate::record::SheetSubject) -> Option<Refusal> {
    let DocId::School { school, exam, .. } = protocol else {
        return None;
    };
    (subject.exam != exam || subject.school != school).then_some(Refusal::NotOfTheProtocol {
        exam: subject.exam,
        school: subject.school,
        protocol,
    })
}

/// Judges a verified sheet against the time the РЦОИ received it, `received`, then the register
/// and the acts. Time comes first: a sheet refused for its category or an act passed every check
/// of time, so a later approval can lift that refusal ([`lift_category_refusals`]).
fn judge_on_receipt<R: automerge::ReadDoc>(
    v: &VerifiedSheet,
    directory: &dyn SignerDirectory,
    standing: &Standing<'_, R>,
    time: SigningTime<'_>,
    received: Timestamp,
) -> Result<(), Refusal> {
    judge_time(v, directory, time, received)?;
    standing.refusal(&v.sheet, true).map_or(Ok(()), Err)
}

/// The checks of time on receipt ([`Refusal`]'s first three).
fn judge_time(
    v: &VerifiedSheet,
    directory: &dyn SignerDirectory,
    time: SigningTime<'_>,
    received: Timestamp,
) -> Result<(), Refusal> {
    let signed_at = v.sheet.signed_at;
    let (first, last) = time.days(v.sheet.subject.exam);
    let window = first.day_window_ms(time.clock).start..last.day_window_ms(time.clock).end;
    if !window.contains(&signed_at.unix_ms()) {
        return Err(Refusal::OutsideScoringDays {
            signed_at,
            first,
            last,
        });
    }
    if signed_at.unix_ms() > received.unix_ms().saturating_add(SIGNED_AHEAD_MS_MAX) {
        return Err(Refusal::SignedAfterReceipt {
            signed_at,
            received,
        });
    }
    match directory.revoked_at(v.sheet.expert) {
        Some(revoked_at) if revoked_at <= received => Err(Refusal::RevokedBeforeReceipt {
            expert: v.sheet.expert,
            revoked_at,
            received,
        }),
        _ => Ok(()),
    }
}

/// At the РЦОИ, after the register changed (an approval, a list imported again): the sheets of
/// `protocol` it refused on receipt only because their participant was not registered or was
/// registered by another category, and whose category is now the category of record, are
/// receipted verified, when nothing else stands against them now ([`Standing::refusal`]). Such
/// a refusal was written only after every check of time passed ([`judge_on_receipt`]); the
/// receipt is compared with the refusal's own text, made again here, not parsed. Returns how many receipts it rewrote.
pub fn lift_category_refusals<D: SignerDirectory>(
    engine: &mut Engine,
    protocol: DocId,
    directory_for: impl Fn(&BTreeMap<String, Vec<u8>>) -> D,
    now_ms: i64,
) -> Result<usize, EngineError> {
    let Some(receipts) = receipts_of(protocol) else {
        return Ok(0);
    };
    let (Some(doc), Some(rcoi)) = (engine.doc(&protocol), engine.doc(&receipts)) else {
        return Ok(0);
    };
    // A lifted sheet must pass every other check as things stand too (its attempt, its room),
    // or its receipt would say verified while no node counts it.
    let memo = Some(engine.signatures());
    let ended = crate::act::ended_attempts_remembered(
        doc,
        &directory_for(&content::organiser_certs(doc)),
        memo,
    );
    let orders = crate::commission::Orders::read_remembered(doc, &directory_for, memo);
    let standing = Standing {
        register: Some(rcoi),
        register_read: None,
        ended: &ended,
        orders: &orders,
    };
    let held = content::receipts(rcoi);
    let lifted: Vec<crate::record::RecordHash> = content::sheets(doc)
        .iter()
        .filter_map(|s| {
            let sheet = s.decode_unverified().ok()?;
            let participant = sheet.subject.participant;
            let of_record = content::registered_category(rcoi, participant.as_str())?;
            if of_record != sheet.category {
                return None;
            }
            let stored = Receipt::read(held.get(&s.hash().to_string())?);
            let Receipt::RefusedOnReceipt(reason) = stored else {
                return None;
            };
            let by_category = Category::ALL.iter().any(|other| {
                Refusal::CategoryNotOfRecord {
                    participant,
                    sheet: sheet.category,
                    of_record: *other,
                }
                .to_string()
                    == reason
            });
            let unregistered = Refusal::NotRegistered { participant }.to_string() == reason;
            let stands = standing.refusal(&sheet, true).is_none();
            ((by_category || unregistered) && stands).then(|| s.hash())
        })
        .collect();
    if lifted.is_empty() {
        return Ok(0);
    }
    engine.change(now_ms, receipts, |tx| {
        lifted
            .iter()
            .try_for_each(|h| content::put_receipt(tx, h, RECEIPT_VERIFIED))
    })?;
    Ok(lifted.len())
}

/// The РЦОИ document that belongs with `protocol`, if it is a protocol.
#[must_use]
pub fn receipts_of(protocol: DocId) -> Option<DocId> {
    match protocol.kind() {
        Some(DocKind::Protocol) => protocol.sibling(DocKind::Rcoi),
        _ => None,
    }
}

/// Verifies the sheets of `protocol` that have no receipt yet (and those receipted invalid, when
/// they are to be judged again: the module's comment) and receipts them in the school's
/// РЦОИ document ([`Receipt`]), in one change, judging time against `now_ms` on `time`
/// ([`Refusal`]). `directory_for` builds the signer directory from the experts'
/// certificates the protocol carries. Returns how many receipts were written; 0 on a node other
/// than the РЦОИ or a document other than a protocol.
pub fn receipt_new_sheets<D: SignerDirectory>(
    engine: &mut Engine,
    protocol: DocId,
    rules: &Rules,
    directory_for: impl Fn(&BTreeMap<String, Vec<u8>>) -> D,
    time: SigningTime<'_>,
    now_ms: i64,
) -> Result<usize, EngineError> {
    only(receipt(
        engine,
        &[protocol],
        rules,
        directory_for,
        Some(time),
        now_ms,
    ))
}

/// [`receipt_new_sheets`] for every protocol of `protocols` (each once, however often listed)
/// that a batch of changes touched: the signatures of all their new sheets are checked in the
/// same ed25519 batches ([`verify_groups`]), then each school's receipts are written in one
/// change. How many sheets of each protocol were receipted, or why its receipts were not
/// written, in the order given (a protocol listed again counts 0 there).
pub fn receipt_new_sheets_of<D: SignerDirectory>(
    engine: &mut Engine,
    protocols: &[DocId],
    rules: &Rules,
    directory_for: impl Fn(&BTreeMap<String, Vec<u8>>) -> D,
    time: SigningTime<'_>,
    now_ms: i64,
) -> Vec<(DocId, Result<usize, EngineError>)> {
    receipt(engine, protocols, rules, directory_for, Some(time), now_ms)
}

/// As [`receipt_new_sheets`] for sheets whose arrival time is not known: those a store of
/// layout 1 receipted (it kept its receipts in the school's results document, where a school
/// could write them, so they are written again). Only sheets with such a receipt are taken; the
/// rest wait for [`receipt_new_sheets`]. They are judged as layout 1 judged them, at their
/// `signed_at`: judging them at the time of the upgrade would refuse every sheet of an expert
/// revoked since the exam. Acts and the register are judged as they stand
/// ([`Standing::refusal`]); a participant the register does not list is not refused (layout 1
/// had no register).
pub fn receipt_carried_over<D: SignerDirectory>(
    engine: &mut Engine,
    protocol: DocId,
    rules: &Rules,
    directory_for: impl Fn(&BTreeMap<String, Vec<u8>>) -> D,
    now_ms: i64,
) -> Result<usize, EngineError> {
    only(receipt(
        engine,
        &[protocol],
        rules,
        directory_for,
        None,
        now_ms,
    ))
}

/// The one protocol's outcome of [`receipt`] called with one.
fn only(mut outcomes: Vec<(DocId, Result<usize, EngineError>)>) -> Result<usize, EngineError> {
    outcomes.pop().map_or(Ok(0), |(_, outcome)| outcome)
}

/// The receipts to write for a protocol: each sheet's hash and its receipt's text.
type Receipts = Vec<(RecordHash, String)>;

/// A protocol with sheets to receipt, and what they are judged against.
struct Fresh<D> {
    protocol: DocId,
    receipts: DocId,
    sheets: Vec<crate::record::SignedSheet>,
    /// For each of `sheets`, the receipt it holds when it is judged again.
    held: Vec<Option<String>>,
    /// The experts' certificates the protocol carries (`directory` is built from them).
    experts: BTreeMap<String, Vec<u8>>,
    directory: D,
    ended: BTreeMap<crate::record::SheetSubject, crate::act::Act>,
    orders: crate::commission::Orders,
}

impl<D: SignerDirectory> Fresh<D> {
    /// The receipt for a sheet of this protocol, given how its own checks went: time on
    /// receipt is judged on `time` when given ([`judge_on_receipt`]).
    fn judge<R: automerge::ReadDoc>(
        &self,
        checked: Result<VerifiedSheet, crate::record::SheetError>,
        against: &Standing<'_, R>,
        time: Option<SigningTime<'_>>,
        received: Timestamp,
    ) -> Receipt {
        let v = match checked {
            Err(e) => return Receipt::Invalid(e.to_string()),
            Ok(v) => v,
        };
        if let Some(refusal) = not_of_the_protocol(self.protocol, &v.sheet.subject) {
            return Receipt::RefusedOnReceipt(refusal.to_string());
        }
        let judged = match time {
            Some(c) => judge_on_receipt(&v, &self.directory, against, c, received),
            None => against.refusal(&v.sheet, false).map_or(Ok(()), Err),
        };
        match judged {
            Ok(()) => Receipt::Verified,
            Err(refusal) => Receipt::RefusedOnReceipt(refusal.to_string()),
        }
    }
}

/// Receipts the new sheets of `protocols`; judges time on receipt on `time` when given.
fn receipt<D: SignerDirectory>(
    engine: &mut Engine,
    protocols: &[DocId],
    rules: &Rules,
    directory_for: impl Fn(&BTreeMap<String, Vec<u8>>) -> D,
    time: Option<SigningTime<'_>>,
    now_ms: i64,
) -> Vec<(DocId, Result<usize, EngineError>)> {
    let mut outcomes: Vec<(DocId, Result<usize, EngineError>)> =
        protocols.iter().map(|p| (*p, Ok(0))).collect();
    let Ok(received) = Timestamp::from_unix_ms(now_ms) else {
        return outcomes;
    };
    if !matches!(engine.identity().org, OrgCode::Rcoi(_)) {
        return outcomes;
    }
    // Each protocol once, at its first place in the list.
    let mut first_at: BTreeMap<DocId, usize> = BTreeMap::new();
    for (i, p) in protocols.iter().enumerate() {
        first_at.entry(*p).or_insert(i);
    }
    // (protocol, its РЦОИ document, its sheets to receipt, the receipts they hold, its
    // experts' certificates)
    let mut found = Vec::new();
    for &protocol in first_at.keys() {
        let (Some(receipts), Some(doc)) = (receipts_of(protocol), engine.doc(&protocol)) else {
            continue;
        };
        let picks = |text: &str| time.is_some() && Receipt::is_invalid(text);
        let to_judge = content::sheets_to_judge(doc, engine.doc(&receipts), picks, false);
        let mut sheets = to_judge.new;
        if time.is_none() {
            let layout_1: BTreeMap<String, String> = protocol
                .sibling(DocKind::Results)
                .and_then(|r| engine.doc(&r))
                .map(content::receipts)
                .unwrap_or_default();
            sheets.retain(|s| layout_1.contains_key(&s.hash().to_string()));
        }
        // Sheets receipted invalid are decoded only when they are to be judged again: their
        // protocol's certificates are not those they were last judged against.
        let mut experts = None;
        let mut again = Vec::new();
        if to_judge.picked > 0 {
            let certs = content::expert_certs(doc);
            if engine.invalid_judged_against(&protocol) != Some(experts_digest(&certs)) {
                again = content::sheets_to_judge(doc, engine.doc(&receipts), picks, true).again;
            }
            experts = Some(certs);
        }
        if sheets.is_empty() && again.is_empty() {
            continue;
        }
        let mut held: Vec<Option<String>> = vec![None; sheets.len()];
        for (sheet, text) in again {
            sheets.push(sheet);
            held.push(Some(text));
        }
        let experts = experts.unwrap_or_else(|| content::expert_certs(doc));
        found.push((protocol, receipts, sheets, held, experts));
    }
    if found.len() > 1 {
        // A directory for every school's experts at once, dropped: a directory that checks
        // certificates against the region's CA (the РЦОИ's `CaVerifier`) checks the new ones
        // all in one batch then and remembers them, so each school's below finds them checked.
        // (Where an id is listed by two schools, one certificate is taken; the other is checked
        // with its school's.)
        let mut every: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for (_, _, _, _, certs) in &found {
            for (id, der) in certs {
                every.entry(id.clone()).or_insert_with(|| der.clone());
            }
        }
        drop(directory_for(&every));
    }
    let mut fresh: Vec<Fresh<D>> = Vec::new();
    for (protocol, receipts, sheets, held, experts) in found {
        let Some(doc) = engine.doc(&protocol) else {
            continue;
        };
        fresh.push(Fresh {
            protocol,
            receipts,
            sheets,
            held,
            directory: directory_for(&experts),
            experts,
            // Acts by the organisers' certificates alone: an expert's listed under the same id
            // must not stand in for them. Their signatures and the orders' are checked once
            // per node, not at every sheet ([`Engine::signatures`]).
            ended: crate::act::ended_attempts_remembered(
                doc,
                &directory_for(&content::organiser_certs(doc)),
                Some(engine.signatures()),
            ),
            orders: crate::commission::Orders::read_remembered(
                doc,
                &directory_for,
                Some(engine.signatures()),
            ),
        });
    }
    let groups: Vec<(&[crate::record::SignedSheet], &dyn SignerDirectory)> = fresh
        .iter()
        .map(|f| (f.sheets.as_slice(), &f.directory as &dyn SignerDirectory))
        .collect();
    let checked = verify_groups(&groups, rules);
    // (protocol, its РЦОИ document, a receipt per sheet whose receipt changes, and the digest
    // of what the sheets receipted invalid were judged against, when it is to be noted)
    let verdicts: Vec<(DocId, DocId, Receipts, Option<[u8; 32]>)> = fresh
        .iter()
        .zip(checked)
        .map(|(f, results)| {
            let register = engine.doc(&f.receipts);
            let register_read = (f.sheets.len() >= REGISTER_WALK_SHEETS_MIN)
                .then(|| register.map(RegisterRead::read))
                .flatten();
            let against = Standing {
                register,
                register_read: register_read.as_ref(),
                ended: &f.ended,
                orders: &f.orders,
            };
            let judged: Vec<(RecordHash, String)> = f
                .sheets
                .iter()
                .zip(results)
                .map(|(s, r)| (s.hash(), f.judge(r, &against, time, received).text()))
                .collect();
            let invalid = f.held.iter().any(Option::is_some)
                || judged.iter().any(|(_, text)| Receipt::is_invalid(text));
            let note = (time.is_some() && invalid).then(|| experts_digest(&f.experts));
            let receipts = judged
                .into_iter()
                .zip(&f.held)
                // A sheet judged again is written again only when it no longer reads invalid:
                // another reason for the same verdict is not worth a change (a school could
                // have every junk sheet's receipt rewritten by switching its certificates).
                .filter(|((_, text), held)| held.is_none() || !Receipt::is_invalid(text))
                .map(|(verdict, _)| verdict)
                .collect();
            (f.protocol, f.receipts, receipts, note)
        })
        .collect();
    for (protocol, receipts, verdicts, note) in verdicts {
        let written = if verdicts.is_empty() {
            Ok(0)
        } else {
            let entries: Vec<_> = verdicts
                .iter()
                .map(|(h, v)| content::receipt_entry(h, v))
                .collect();
            engine
                .put_root(now_ms, receipts, &entries)
                .map(|()| verdicts.len())
        };
        if let (Ok(_), Some(digest)) = (&written, note) {
            engine.note_invalid_judged_against(protocol, digest);
        }
        if let Some(outcome) = first_at.get(&protocol).and_then(|&i| outcomes.get_mut(i)) {
            outcome.1 = written;
        }
    }
    outcomes
}

/// The digest of a protocol's experts' certificates: what the engine notes its sheets receipted
/// invalid were judged against (`Engine::invalid_judged_against`; the module's comment says why).
fn experts_digest(experts: &BTreeMap<String, Vec<u8>>) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for (id, der) in experts {
        h.update((id.len() as u64).to_le_bytes());
        h.update(id.as_bytes());
        h.update((der.len() as u64).to_le_bytes());
        h.update(der);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::codes::{MunicipalityCode, RegionCode};
    use crate::record::fixtures::{at, directory, draft, expert, rules, school, sign};
    use crate::record::{FixedDirectory, SignedSheet};
    use crate::sync::{FixedCa, Input, NodeIdentity, Output};

    /// The checks of time on UTC, with the shipped year's scoring days.
    fn utc() -> SigningTime<'static> {
        static YEAR: std::sync::LazyLock<crate::year::YearData> =
            std::sync::LazyLock::new(|| crate::year::YearData::year_2024().unwrap());
        static CALENDAR: std::sync::LazyLock<crate::workdays::ProductionCalendar> =
            std::sync::LazyLock::new(|| crate::workdays::ProductionCalendar::shipped().unwrap());
        SigningTime {
            clock: UtcOffset::UTC,
            year: &YEAR,
            calendar: &CALENDAR,
        }
    }

    /// The participants whose attempt counts in `resolution` (a current verdict).
    fn counted(resolution: &crate::resolve::ProtocolResolution) -> Vec<&str> {
        resolution
            .subjects
            .iter()
            .filter(|(_, r)| r.verdict.current().is_some())
            .map(|(s, _)| s.participant.as_str())
            .collect()
    }

    fn tampered(sheet: &SignedSheet) -> SignedSheet {
        let mut bytes = sheet.as_bytes().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        SignedSheet::from_bytes(bytes).unwrap()
    }

    /// The regional register that lists every participant of `sheets` by the category their
    /// sheet scores.
    fn as_scored(sheets: &[SignedSheet]) -> Vec<(String, Category)> {
        sheets
            .iter()
            .map(|s| {
                let sheet = s.decode_unverified().unwrap();
                (sheet.subject.participant.to_string(), sheet.category)
            })
            .collect()
    }

    /// The РЦОИ registers `register` (participant, category of record) for the school; the
    /// school enters `sheets` into its protocol and syncs with the РЦОИ at `at(30)`, which
    /// receipts them against `directory`; returns the receipts as the school sees them, and the
    /// school's resolution of its protocol with them.
    fn ingest_registered(
        sheets: &[SignedSheet],
        register: &[(String, Category)],
        directory: &FixedDirectory,
        carried_over: bool,
    ) -> (BTreeMap<String, String>, crate::resolve::ProtocolResolution) {
        ingest_with_acts(sheets, register, &[], directory, carried_over)
    }

    /// As [`ingest_registered`], the school also holding `acts` (signed) in its protocol.
    fn ingest_with_acts(
        sheets: &[SignedSheet],
        register: &[(String, Category)],
        acts: &[(crate::act::Act, crate::statement::Statement)],
        directory: &FixedDirectory,
        carried_over: bool,
    ) -> (BTreeMap<String, String>, crate::resolve::ProtocolResolution) {
        ingest_then(
            sheets,
            register,
            (acts, &[]),
            directory,
            carried_over,
            |_, _, _| {},
        )
    }

    /// The signed records a protocol holds besides sheets: acts, commission orders.
    type Records<'a> = (
        &'a [(crate::act::Act, crate::statement::Statement)],
        &'a [(crate::commission::Commission, crate::statement::Statement)],
    );

    /// A school (node 0) and the РЦОИ (node 1) connected to each other, the РЦОИ holding the
    /// school's regional register; the protocol they share, and now (`at(30)`).
    struct Pair {
        nodes: Vec<Engine>,
        protocol: DocId,
        now: i64,
        /// Each node's identity, key and certificate, and their CA: what starts one again.
        made: ([NodeIdentity; 2], [SigningKey; 2], Vec<Vec<u8>>, FixedCa),
    }

    impl Pair {
        /// The РЦОИ registers `register` (participant, category of record) for the school.
        fn new(register: &[(String, Category)]) -> Self {
            let region = RegionCode::new("42").unwrap();
            let municipality = MunicipalityCode::new("4201").unwrap();
            let identities = [
                NodeIdentity {
                    region,
                    org: OrgCode::School(school()),
                    municipality: Some(municipality),
                },
                NodeIdentity {
                    region,
                    org: OrgCode::Rcoi(region),
                    municipality: None,
                },
            ];
            let keys = [
                SigningKey::from_bytes(&[1; 32]),
                SigningKey::from_bytes(&[2; 32]),
            ];
            let ca = FixedCa::default();
            let certs: Vec<Vec<u8>> = (0..2).map(|i| ca.issue(identities[i], &keys[i])).collect();
            let mut nodes: Vec<Engine> = (0..2)
                .map(|i| {
                    Engine::new(
                        identities[i],
                        keys[i].clone(),
                        certs[i].clone(),
                        Box::new(ca.clone()),
                    )
                })
                .collect();
            let protocol = DocId::School {
                kind: DocKind::Protocol,
                municipality,
                school: school(),
                exam: crate::record::fixtures::subject("p1").exam,
            };
            let now = at(30).unix_ms();
            nodes[1]
                .change(now, receipts_of(protocol).unwrap(), |tx| {
                    register.iter().try_for_each(|(id, category)| {
                        let participant = crate::participant::Participant {
                            id: ParticipantId::new(id).unwrap(),
                            name: crate::participant::FullName::new("Иванова", "Анна", "").unwrap(),
                            document: crate::participant::IdentityDocument::new("3204", id)
                                .unwrap(),
                            class: crate::participant::SchoolClass::new("9А").unwrap(),
                            category: *category,
                        };
                        content::put_registered(tx, &participant)
                    })
                })
                .unwrap();
            let mut pair = Pair {
                nodes,
                protocol,
                now,
                made: (identities, keys, certs, ca),
            };
            pair.connect();
            pair
        }

        /// Both nodes connect to each other.
        fn connect(&mut self) {
            for (i, other) in [(0, 1), (1, 0)] {
                self.nodes[i].handle(
                    self.now,
                    Input::Connected {
                        peer: 1,
                        identity: self.made.0[other],
                        wire: crate::sync::wire::WIRE_VERSION,
                        link: crate::sync::Link::Quic,
                    },
                );
            }
        }

        /// The РЦОИ starts again with nothing held, connects to the school and takes back from
        /// it everything, its own documents too, making no receipt pass meanwhile: as a node
        /// that starts again has its documents but nothing it kept only in memory.
        fn restart_rcoi(&mut self) {
            let (identities, keys, certs, ca) = &self.made;
            self.nodes[1] = Engine::new(
                identities[1],
                keys[1].clone(),
                certs[1].clone(),
                Box::new(ca.clone()),
            );
            self.nodes[0].handle(self.now, Input::Disconnected { peer: 1 });
            self.connect();
            self.deliver(|_, _, _| {});
        }

        /// The school changes its protocol.
        fn school_writes(
            &mut self,
            f: impl FnOnce(
                &mut automerge::transaction::Transaction<'_>,
            ) -> Result<(), automerge::AutomergeError>,
        ) {
            self.nodes[0].change(self.now, self.protocol, f).unwrap();
        }

        /// Delivers until quiet; after every delivery to it the РЦОИ makes its receipt `pass`
        /// (its engine, the protocol, now), as the drivers do.
        fn deliver(&mut self, pass: impl Fn(&mut Engine, DocId, i64)) {
            for _ in 0..100 {
                let mut quiet = true;
                for from in 0..2 {
                    let frames: Vec<Vec<u8>> =
                        std::iter::from_fn(|| self.nodes[from].poll_output())
                            .filter_map(|o| match o {
                                Output::Send { bytes, .. } => Some(bytes),
                                _ => None,
                            })
                            .collect();
                    for bytes in frames {
                        quiet = false;
                        self.nodes[1 - from].handle(
                            self.now,
                            Input::Received {
                                peer: 1,
                                bytes: &bytes,
                            },
                        );
                        if 1 - from == 1 {
                            pass(&mut self.nodes[1], self.protocol, self.now);
                        }
                    }
                }
                if quiet {
                    return;
                }
            }
        }

        /// The receipts as the school holds them.
        fn receipts_at_school(&self) -> BTreeMap<String, String> {
            self.nodes[0]
                .doc(&receipts_of(self.protocol).unwrap())
                .map(content::receipts)
                .unwrap_or_default()
        }

        /// The school's resolution of its protocol with the receipts it holds, its experts
        /// judged by `directory`.
        fn resolution_at_school(
            &self,
            directory: &FixedDirectory,
        ) -> crate::resolve::ProtocolResolution {
            crate::settlement::resolve_protocol(
                self.nodes[0].doc(&self.protocol).unwrap(),
                self.nodes[0].doc(&receipts_of(self.protocol).unwrap()),
                (
                    &rules(),
                    &std::collections::BTreeSet::from([crate::settlement::Settler::Chair]),
                ),
                |_| directory,
            )
            .resolution
        }
    }

    /// As [`ingest_with_acts`]; once everything is delivered, `then` acts at the РЦОИ (its
    /// engine, the protocol, now), and what it wrote is delivered too.
    fn ingest_then(
        sheets: &[SignedSheet],
        register: &[(String, Category)],
        (acts, orders): Records<'_>,
        directory: &FixedDirectory,
        carried_over: bool,
        then: impl FnOnce(&mut Engine, DocId, i64),
    ) -> (BTreeMap<String, String>, crate::resolve::ProtocolResolution) {
        let mut pair = Pair::new(register);
        let (protocol, now) = (pair.protocol, pair.now);
        if carried_over {
            // Layout 1 kept the РЦОИ's receipts in the school's results document.
            pair.nodes[0]
                .change(now, protocol.sibling(DocKind::Results).unwrap(), |tx| {
                    sheets
                        .iter()
                        .try_for_each(|s| content::put_receipt(tx, &s.hash(), RECEIPT_VERIFIED))
                })
                .unwrap();
        }
        pair.school_writes(|tx| {
            for (order, statement) in orders {
                content::put_commission(tx, order.edition, statement, order.head, b"head cert")?;
            }
            for (act, statement) in acts {
                content::put_act(
                    tx,
                    act.participant,
                    act.attempt,
                    statement,
                    act.organiser,
                    b"organiser cert",
                )?;
            }
            sheets
                .iter()
                .try_for_each(|s| content::put_sheet(tx, s, expert(1), b"cert"))
        });
        let pass = |rcoi: &mut Engine, protocol: DocId, now: i64| {
            if carried_over {
                receipt_carried_over(rcoi, protocol, &rules(), |_| directory, now)
            } else {
                receipt_new_sheets(rcoi, protocol, &rules(), |_| directory, utc(), now)
            }
            .unwrap();
        };
        pair.deliver(pass);
        // What the РЦОИ does next (an approval), delivered down to the school in turn.
        then(&mut pair.nodes[1], protocol, now);
        pair.deliver(pass);
        // Everything was receipted once: another pass finds nothing new.
        assert_eq!(
            receipt_new_sheets(
                &mut pair.nodes[1],
                protocol,
                &rules(),
                |_| directory,
                utc(),
                now
            )
            .unwrap(),
            0
        );
        (
            pair.receipts_at_school(),
            pair.resolution_at_school(directory),
        )
    }

    /// Several protocols in one pass: each school's sheets are receipted in its own РЦОИ
    /// document (a damaged one invalid), a protocol listed twice is receipted once, and a
    /// document that is no protocol counts nothing.
    #[test]
    fn several_schools_protocols_are_receipted_in_one_pass() {
        let region = RegionCode::new("42").unwrap();
        let municipality = MunicipalityCode::new("4201").unwrap();
        let other = crate::codes::SchoolCode::new("420102").unwrap();
        let mut directory = FixedDirectory::default();
        directory.add(
            expert(1),
            crate::record::fixtures::key(1).verifying_key(),
            &[school(), other],
        );
        let ca = FixedCa::default();
        let rcoi_identity = NodeIdentity {
            region,
            org: OrgCode::Rcoi(region),
            municipality: None,
        };
        let rcoi_key = SigningKey::from_bytes(&[9; 32]);
        let rcoi_cert = ca.issue(rcoi_identity, &rcoi_key);
        let mut rcoi = Engine::new(rcoi_identity, rcoi_key, rcoi_cert, Box::new(ca.clone()));
        let now = at(30).unix_ms();
        let mut schools = Vec::new();
        for (n, code) in [school(), other].into_iter().enumerate() {
            let identity = NodeIdentity {
                region,
                org: OrgCode::School(code),
                municipality: Some(municipality),
            };
            let key = SigningKey::from_bytes(&[3 + n as u8; 32]);
            let cert = ca.issue(identity, &key);
            let mut node = Engine::new(identity, key, cert, Box::new(ca.clone()));
            let protocol = DocId::School {
                kind: DocKind::Protocol,
                municipality,
                school: code,
                exam: crate::record::fixtures::subject("p1").exam,
            };
            let mut sheets: Vec<SignedSheet> = (0..3u16)
                .map(|i| {
                    let mut d = draft(&format!("p{n}{i}"), 10 + i, 1);
                    d.subject.school = code;
                    sign(d, 1)
                })
                .collect();
            if n == 1 {
                sheets[2] = tampered(&sheets[2]);
            }
            node.change(now, protocol, |tx| {
                sheets
                    .iter()
                    .try_for_each(|s| content::put_sheet(tx, s, expert(1), b"cert"))
            })
            .unwrap();
            let (mut saved, mut endorsements) = (Vec::new(), Vec::new());
            while let Some(output) = node.poll_output() {
                match output {
                    Output::Persist(crate::sync::Persist::Changes { bytes, .. }) => {
                        saved.extend(bytes);
                    }
                    Output::Persist(crate::sync::Persist::Attestation { cert, bytes, .. }) => {
                        endorsements.push((cert, bytes));
                    }
                    _ => {}
                }
            }
            rcoi.load_doc(protocol, &saved, &endorsements).unwrap();
            rcoi.change(now, receipts_of(protocol).unwrap(), |tx| {
                sheets.iter().try_for_each(|s| {
                    let sheet = s.decode_unverified().unwrap();
                    content::put_registered_category(tx, sheet.subject.participant, sheet.category)
                })
            })
            .unwrap();
            schools.push((protocol, sheets));
        }
        let results = schools[0].0.sibling(DocKind::Results).unwrap();
        let listed = [schools[1].0, results, schools[0].0, schools[1].0];
        let outcomes: Vec<(DocId, usize)> =
            receipt_new_sheets_of(&mut rcoi, &listed, &rules(), |_| &directory, utc(), now)
                .into_iter()
                .map(|(doc, outcome)| (doc, outcome.unwrap()))
                .collect();
        assert_eq!(
            outcomes,
            vec![
                (schools[1].0, 3),
                (results, 0),
                (schools[0].0, 3),
                (schools[1].0, 0)
            ]
        );
        for (n, (protocol, sheets)) in schools.iter().enumerate() {
            let held = content::receipts(rcoi.doc(&receipts_of(*protocol).unwrap()).unwrap());
            let expected: BTreeMap<String, bool> = sheets
                .iter()
                .enumerate()
                .map(|(i, s)| (s.hash().to_string(), !(n == 1 && i == 2)))
                .collect();
            let found: BTreeMap<String, bool> = held
                .iter()
                .map(|(h, v)| (h.clone(), v == RECEIPT_VERIFIED))
                .collect();
            assert_eq!(found, expected, "school {n}");
        }
    }

    /// As [`ingest_registered`] with every participant registered by the category their sheet
    /// scores.
    fn ingest(
        sheets: &[SignedSheet],
        directory: &FixedDirectory,
        carried_over: bool,
    ) -> (BTreeMap<String, String>, crate::resolve::ProtocolResolution) {
        ingest_registered(sheets, &as_scored(sheets), directory, carried_over)
    }

    #[test]
    fn a_register_read_in_one_walk_gives_each_participants_category_and_first_attempt() {
        let mut doc = automerge::AutoCommit::new();
        let id = |s: &str| ParticipantId::new(s).unwrap();
        let attempt = |n: u8| crate::record::Attempt::new(n).unwrap();
        content::put_registered_category(&mut doc, id("p1"), Category::Standard).unwrap();
        content::put_registered_category(&mut doc, id("p2"), Category::Autism).unwrap();
        content::put_registered_admission(&mut doc, id("p2"), attempt(2), "valid").unwrap();
        // Admitted with no category written, and a category that does not read.
        content::put_registered_admission(&mut doc, id("p3"), attempt(3), "valid").unwrap();
        automerge::transaction::Transactable::put(
            &mut doc,
            automerge::ROOT,
            "reg/p4/category",
            "no-such-category",
        )
        .unwrap();
        let read = RegisterRead::read(&doc);
        let exam: crate::exam::ExamId = "is-2024-02-14".parse().unwrap();
        let got = |p: &str| (read.category(id(p)), read.first_attempt(id(p), exam));
        assert_eq!(got("p1"), (Some(Category::Standard), attempt(1)));
        assert_eq!(got("p2"), (Some(Category::Autism), attempt(2)));
        assert_eq!(got("p3"), (None, attempt(3)));
        assert_eq!(got("p4"), (None, attempt(1)));
        assert_eq!(got("p5"), (None, attempt(1)), "not in the register");
        // On an additional date, an unlisted participant's first attempt is the date's.
        let march: crate::exam::ExamId = "is-2024-03-13".parse().unwrap();
        assert_eq!(read.first_attempt(id("p5"), march), attempt(2));
    }

    /// The demo's finding: the РЦОИ registered a participant as standard, the school changed her
    /// to autism in its roster, and a 3-point sheet by autism's criteria (pass from 3) was
    /// receipted verified, so «3 зачёт» where the standard pass mark is 10 of 20. Now only the
    /// category of record counts. Expectations written out per participant: p1 registered
    /// standard and scored as autism (the demo's case), p2 registered and scored autism, p3 not
    /// in the register; with them, `others` sheets of registered standard participants. Returns
    /// the school's resolution and the receipts of the others.
    fn judged_by_category(others: usize) -> (crate::resolve::ProtocolResolution, Vec<Receipt>) {
        let autism = |participant: &str| {
            let mut d = draft(participant, 0, 1);
            d.category = Category::Autism;
            d.points = crate::rules::parse_points("Ч1=1,М1=2,М2=0,Д1=0").unwrap();
            sign(d, 1)
        };
        let (changed_by_the_school, of_record, unregistered) =
            (autism("p1"), autism("p2"), autism("p3"));
        assert_eq!(
            of_record
                .verify(&rules(), &directory())
                .unwrap()
                .sheet
                .outcome,
            crate::rules::Outcome::Pass,
            "3 of 6 passes by autism's rules"
        );
        let others: Vec<SignedSheet> = (0..others)
            .map(|i| sign(draft(&format!("q{i}"), 12, 1), 1))
            .collect();
        let mut register = vec![
            ("p1".to_owned(), Category::Standard),
            ("p2".to_owned(), Category::Autism),
        ];
        register.extend(as_scored(&others));
        let mut sheets = vec![
            changed_by_the_school.clone(),
            of_record.clone(),
            unregistered.clone(),
        ];
        sheets.extend(others.iter().cloned());
        let (receipts, resolution) = ingest_registered(&sheets, &register, &directory(), false);
        let receipt = |s: &SignedSheet| Receipt::read(&receipts[&s.hash().to_string()]);
        assert_eq!(receipt(&of_record), Receipt::Verified);
        assert_eq!(
            receipt(&changed_by_the_school),
            Receipt::RefusedOnReceipt(
                "the sheet scores participant p1 as autism, but the category of record is standard"
                    .into()
            )
        );
        assert_eq!(
            receipt(&unregistered),
            Receipt::RefusedOnReceipt(
                "participant p3 is not in the regional register of the school".into()
            )
        );
        (resolution, others.iter().map(receipt).collect())
    }

    /// A sheet made for an exam date no order or act covers, put into the protocol of the real
    /// one: signed on its own day, by an expert of the school, for a participant of the
    /// register, it passes every other check (the protocol has no order for that date). It is
    /// refused for not being of the protocol, and the school does not count it.
    #[test]
    fn a_sheet_for_another_exam_than_its_protocols_is_refused_on_receipt() {
        let of_the_day = sign(draft("p1", 12, 1), 1);
        let mut d = draft("p2", 15, 1);
        d.subject.exam = "is-2024-02-13".parse().unwrap();
        d.signed_at = "2024-02-13T05:00:00Z".parse().unwrap();
        let made_up = sign(d, 1);
        let register = as_scored(&[of_the_day.clone(), made_up.clone()]);
        let (receipts, resolution) = ingest_registered(
            &[of_the_day.clone(), made_up.clone()],
            &register,
            &directory(),
            false,
        );
        let receipt = |s: &SignedSheet| Receipt::read(&receipts[&s.hash().to_string()]);
        assert_eq!(receipt(&of_the_day), Receipt::Verified);
        assert_eq!(
            receipt(&made_up),
            Receipt::RefusedOnReceipt(
                "the sheet is for exam is-2024-02-13 at school 420101, but it arrived in the \
                 protocol protocol/4201/420101/is-2024-02-14"
                    .into()
            )
        );
        let counted = counted(&resolution);
        assert_eq!(counted, vec!["p1"]);
    }

    /// The experts a pass knows from a protocol's certificates: those of [`directory`] when
    /// expert 1's certificate is the real one (`cert`), none when it is anything else.
    fn by_expert_1s_cert(certs: &BTreeMap<String, Vec<u8>>) -> FixedDirectory {
        if certs.get(expert(1).as_str()).map(Vec::as_slice) == Some(b"cert".as_slice()) {
            directory()
        } else {
            FixedDirectory::default()
        }
    }

    /// A receipt pass at the РЦОИ with experts judged by [`by_expert_1s_cert`].
    fn pass_by_certs(rcoi: &mut Engine, protocol: DocId, now: i64) {
        receipt_new_sheets(rcoi, protocol, &rules(), by_expert_1s_cert, utc(), now).unwrap();
    }

    /// The made-up exam date of [`a_sheet_for_another_exam_than_its_protocols_is_refused_on_receipt`]
    /// by another way in: the school stores the sheet beside junk under its expert's entry, so
    /// it is receipted invalid for its signer before any check of protocol or time runs, then
    /// puts the real certificate there. Checked afresh, the sheet verifies at every node; the
    /// РЦОИ judges it again as arriving now and refuses it on receipt, which binds the school.
    #[test]
    fn a_sheet_receipted_invalid_is_judged_again_when_its_experts_certificate_changes() {
        let of_the_day = sign(draft("p1", 12, 1), 1);
        let mut d = draft("p2", 15, 1);
        d.subject.exam = "is-2024-02-13".parse().unwrap();
        d.signed_at = "2024-02-13T05:00:00Z".parse().unwrap();
        let made_up = sign(d, 1);
        let mut pair = Pair::new(&as_scored(&[of_the_day.clone(), made_up.clone()]));
        pair.school_writes(|tx| content::put_sheet(tx, &made_up, expert(1), b"junk"));
        pair.deliver(pass_by_certs);
        let receipt = |pair: &Pair, s: &SignedSheet| {
            Receipt::read(&pair.receipts_at_school()[&s.hash().to_string()])
        };
        assert_eq!(
            receipt(&pair, &made_up),
            Receipt::Invalid("signer: expert exp-1 is not known to the region".into())
        );
        // The real certificate, and an honest sheet with it.
        pair.school_writes(|tx| content::put_sheet(tx, &of_the_day, expert(1), b"cert"));
        pair.deliver(pass_by_certs);
        assert_eq!(receipt(&pair, &of_the_day), Receipt::Verified);
        assert_eq!(
            receipt(&pair, &made_up),
            Receipt::RefusedOnReceipt(
                "the sheet is for exam is-2024-02-13 at school 420101, but it arrived in the \
                 protocol protocol/4201/420101/is-2024-02-14"
                    .into()
            )
        );
        let resolution = pair.resolution_at_school(&directory());
        let counted = counted(&resolution);
        assert_eq!(counted, vec!["p1"]);
    }

    /// While a protocol's certificates stay as they were, its sheets receipted invalid are not
    /// judged again: a pass finds nothing to do, whatever else changed in the protocol. When
    /// they change, the sheets are judged again, and a receipt whose verdict stays is not
    /// written again.
    #[test]
    fn sheets_receipted_invalid_are_judged_again_only_when_the_certificates_change() {
        use automerge::transaction::Transactable;
        let forged = tampered(&sign(draft("p1", 12, 1), 1));
        let mut pair = Pair::new(&as_scored(std::slice::from_ref(&forged)));
        pair.school_writes(|tx| content::put_sheet(tx, &forged, expert(1), b"cert"));
        pair.deliver(pass_by_certs);
        let (protocol, now) = (pair.protocol, pair.now);
        let judged = std::cell::Cell::new(0);
        let pass = |rcoi: &mut Engine, certs_seen: &std::cell::Cell<usize>| {
            receipt_new_sheets(
                rcoi,
                protocol,
                &rules(),
                |certs| {
                    certs_seen.set(certs_seen.get() + 1);
                    by_expert_1s_cert(certs)
                },
                utc(),
                now,
            )
            .unwrap()
        };
        // Another change to the protocol, not to its certificates.
        pair.school_writes(|tx| tx.put(automerge::ROOT, "note", "x").map(|_| ()));
        pair.deliver(|_, _, _| {});
        assert_eq!((pass(&mut pair.nodes[1], &judged), judged.get()), (0, 0));
        // Another expert's certificate: judged again, the same verdict, nothing written.
        pair.school_writes(|tx| {
            tx.put(
                automerge::ROOT,
                format!("expert/{}", expert(2)),
                b"other".to_vec(),
            )
            .map(|_| ())
        });
        pair.deliver(|_, _, _| {});
        assert_eq!(pass(&mut pair.nodes[1], &judged), 0);
        assert!(judged.get() > 0, "judged again");
        let before = judged.get();
        assert_eq!(pass(&mut pair.nodes[1], &judged), 0);
        assert_eq!(judged.get(), before, "judged once for those certificates");
        let text = &pair.receipts_at_school()[&forged.hash().to_string()];
        assert_eq!(text, "invalid: the signature does not verify");
    }

    /// A sheet receipted invalid from the РЦОИ's own passing state (here its CA knew nobody
    /// yet) is judged again at the РЦОИ's next start, with what it checks with then, though the
    /// protocol's certificates did not change: that memory is not kept across starts.
    #[test]
    fn a_sheet_receipted_invalid_is_judged_again_after_the_rcoi_starts_again() {
        let sheet = sign(draft("p1", 12, 1), 1);
        let mut pair = Pair::new(&as_scored(std::slice::from_ref(&sheet)));
        pair.school_writes(|tx| content::put_sheet(tx, &sheet, expert(1), b"cert"));
        let nobody = FixedDirectory::default();
        let everyone = directory();
        fn pass_with(d: &FixedDirectory) -> impl Fn(&mut Engine, DocId, i64) + '_ {
            move |rcoi, protocol, now| {
                receipt_new_sheets(rcoi, protocol, &rules(), |_| d, utc(), now).unwrap();
            }
        }
        pair.deliver(pass_with(&nobody));
        let receipt =
            |pair: &Pair| Receipt::read(&pair.receipts_at_school()[&sheet.hash().to_string()]);
        assert_eq!(
            receipt(&pair),
            Receipt::Invalid("signer: expert exp-1 is not known to the region".into())
        );
        // Running on, the РЦОИ does not judge it again: its certificates are those it was
        // judged against.
        let (protocol, now) = (pair.protocol, pair.now);
        pass_with(&everyone)(&mut pair.nodes[1], protocol, now);
        pair.deliver(|_, _, _| {});
        assert!(matches!(receipt(&pair), Receipt::Invalid(_)));
        pair.restart_rcoi();
        pass_with(&everyone)(&mut pair.nodes[1], protocol, now);
        pair.deliver(|_, _, _| {});
        assert_eq!(receipt(&pair), Receipt::Verified);
    }

    /// Seed 002 §67: scoring ends within 5 calendar days of the exam (participants with РАС are
    /// scored from the recording after the day, §60). A sheet signed on the fifth day after
    /// counts; one signed on the sixth is refused.
    #[test]
    fn a_sheet_signed_within_the_scoring_days_counts_and_after_them_is_refused() {
        let day_ms = 86_400_000;
        let signed = |participant: &str, days_after: i64| {
            let mut d = draft(participant, 12, 1);
            d.signed_at = Timestamp::from_unix_ms(at(30).unix_ms() + days_after * day_ms).unwrap();
            sign(d, 1)
        };
        let fifth = signed("p1", 5);
        let sixth = signed("p2", 6);
        let mut pair = Pair::new(&as_scored(&[fifth.clone(), sixth.clone()]));
        pair.now += 6 * day_ms + 60_000;
        pair.school_writes(|tx| {
            content::put_sheet(tx, &fifth, expert(1), b"cert")?;
            content::put_sheet(tx, &sixth, expert(1), b"cert")
        });
        pair.deliver(|rcoi, protocol, now| {
            receipt_new_sheets(rcoi, protocol, &rules(), |_| directory(), utc(), now).unwrap();
        });
        let receipts = pair.receipts_at_school();
        let receipt = |s: &SignedSheet| Receipt::read(&receipts[&s.hash().to_string()]);
        assert_eq!(receipt(&fifth), Receipt::Verified);
        assert_eq!(
            receipt(&sixth),
            Receipt::RefusedOnReceipt(
                "signed at 2024-02-20T02:30:00Z, not between the exam's day 2024-02-14 and the \
                 last day of its scoring 2024-02-19 in the region's calendar"
                    .into()
            )
        );
    }

    #[test]
    fn a_sheet_by_another_category_than_the_registers_is_refused_on_receipt() {
        let (resolution, _) = judged_by_category(0);
        // The school, holding the receipts, counts only p2's sheet.
        let counted = counted(&resolution);
        assert_eq!(counted, vec!["p2"]);
    }

    /// The same with enough other sheets that the pass reads the register in one walk
    /// ([`REGISTER_WALK_SHEETS_MIN`]): the same receipts.
    #[test]
    fn a_pass_of_many_sheets_judges_categories_as_one_of_few() {
        let (_, others) = judged_by_category(REGISTER_WALK_SHEETS_MIN);
        assert_eq!(others.len(), REGISTER_WALK_SHEETS_MIN);
        assert!(others.iter().all(|r| *r == Receipt::Verified));
    }

    /// An approval that makes a refused sheet's category the category of record lifts that
    /// refusal, and only that one. Per participant: p1 registered standard, scored as autism,
    /// then approved autism: verified. p2 the same but its expert was revoked before the sheet
    /// arrived: still refused (for time, which came first). p3 scored standard, registered
    /// standard, then changed to autism: its receipt stays verified, but it no longer counts.
    #[test]
    fn an_approval_lifts_a_refusal_for_the_category_and_nothing_else() {
        let autism = |participant: &str, expert_n: u8| {
            let mut d = draft(participant, 0, expert_n);
            d.category = Category::Autism;
            d.points = crate::rules::parse_points("Ч1=1,М1=2,М2=0,Д1=0").unwrap();
            d.signed_at = at(5);
            sign(d, expert_n)
        };
        let sheets = [
            autism("p1", 1),
            autism("p2", 2),
            sign(draft("p3", 12, 1), 1),
        ];
        let mut directory = directory();
        directory.revoke(expert(2), at(25));
        let register: Vec<(String, Category)> = ["p1", "p2", "p3"]
            .iter()
            .map(|p| ((*p).to_owned(), Category::Standard))
            .collect();
        let (receipts, resolution) = ingest_then(
            &sheets,
            &register,
            (&[], &[]),
            &directory,
            false,
            |rcoi, protocol, now| {
                rcoi.change(now, receipts_of(protocol).unwrap(), |tx| {
                    for (p, c) in [
                        ("p1", Category::Autism),
                        ("p2", Category::Autism),
                        ("p3", Category::Autism),
                    ] {
                        content::put_registered_category(tx, ParticipantId::new(p).unwrap(), c)?;
                    }
                    Ok(())
                })
                .unwrap();
                assert_eq!(
                    lift_category_refusals(rcoi, protocol, |_| &directory, now).unwrap(),
                    1
                );
            },
        );
        let receipt = |s: &SignedSheet| Receipt::read(&receipts[&s.hash().to_string()]);
        assert_eq!(receipt(&sheets[0]), Receipt::Verified);
        assert!(
            matches!(receipt(&sheets[1]), Receipt::RefusedOnReceipt(ref r) if r.contains("revoked")),
            "{:?}",
            receipt(&sheets[1])
        );
        assert_eq!(receipt(&sheets[2]), Receipt::Verified);
        let counted = counted(&resolution);
        assert_eq!(counted, vec!["p1"]);
    }

    /// The experts' directory with the school's organiser `org-1` in it, and the organiser's key.
    fn directory_with_organiser() -> (FixedDirectory, SigningKey) {
        let key = SigningKey::from_bytes(&[77; 32]);
        let mut directory = directory();
        directory.add_person(
            PersonId::new("org-1").unwrap(),
            crate::codes::PersonRole::Organiser,
            OrgCode::School(school()),
            key.verifying_key(),
        );
        (directory, key)
    }

    /// `org-1`'s act № `number` of `kind` ending `participant`'s attempt 1, signed with `key`.
    fn act_on(
        participant: &str,
        kind: crate::act::ActKind,
        number: &str,
        key: &SigningKey,
    ) -> (crate::act::Act, crate::statement::Statement) {
        let s = crate::record::fixtures::subject(participant);
        let act = crate::act::Act {
            exam: s.exam,
            school: s.school,
            participant: s.participant,
            attempt: s.attempt,
            room: crate::codes::RoomCode::new("101").unwrap(),
            kind,
            text: String::new(),
            number: crate::room::ActNumber::new(number).unwrap(),
            organiser: PersonId::new("org-1").unwrap(),
            at: at(10),
        };
        let signed = act.sign(key).unwrap();
        (act, signed)
    }

    /// Seed 002 §45, §49: an attempt ended by an act is not scored. Expectations per participant:
    /// p1's attempt ended by a signed act, p2's by an act its organiser did not sign (a forged
    /// key), p3 has no act.
    #[test]
    fn a_sheet_for_an_attempt_an_act_ended_is_refused_on_receipt() {
        use crate::act::{ActKind, EarlyReason};
        let (directory, organiser_key) = directory_with_organiser();
        let bad = ActKind::Early(EarlyReason::BadRecording);
        let act = |participant: &str, key: &SigningKey| act_on(participant, bad, "3", key);
        let sheets = [
            sign(draft("p1", 12, 1), 1),
            sign(draft("p2", 12, 1), 1),
            sign(draft("p3", 12, 1), 1),
        ];
        let acts = [
            act("p1", &organiser_key),
            act("p2", &SigningKey::from_bytes(&[78; 32])),
        ];
        let (receipts, resolution) =
            ingest_with_acts(&sheets, &as_scored(&sheets), &acts, &directory, false);
        let receipt = |s: &SignedSheet| Receipt::read(&receipts[&s.hash().to_string()]);
        assert_eq!(
            receipt(&sheets[0]),
            Receipt::RefusedOnReceipt(
                "attempt 1 of participant p1 was ended by act № 3: early completion (bad-recording)"
                    .into()
            )
        );
        assert_eq!(receipt(&sheets[1]), Receipt::Verified);
        assert_eq!(receipt(&sheets[2]), Receipt::Verified);
        let counted = counted(&resolution);
        assert_eq!(counted, vec!["p2", "p3"]);
    }

    /// Seed 002 §45: after an act for a bad recording the participant may sit again the same
    /// day, as the next attempt; nothing else opens a second attempt on a date. Expectations:
    /// p1's attempt 2 after a bad recording counts; p2's attempt 2 with no act, and p3's after
    /// an act for health (no same-day retake), are refused with the reason.
    #[test]
    fn only_a_bad_recording_opens_a_second_attempt_the_same_day() {
        use crate::act::{ActKind, EarlyReason};
        let (directory, organiser_key) = directory_with_organiser();
        let act = |participant: &str, kind| act_on(participant, kind, participant, &organiser_key);
        let second = |participant: &str| {
            let mut d = draft(participant, 12, 1);
            d.subject.attempt = crate::record::Attempt::new(2).unwrap();
            sign(d, 1)
        };
        let sheets = [second("p1"), second("p2"), second("p3")];
        let acts = [
            act("p1", ActKind::Early(EarlyReason::BadRecording)),
            act("p3", ActKind::Early(EarlyReason::Health)),
        ];
        let (receipts, resolution) =
            ingest_with_acts(&sheets, &as_scored(&sheets), &acts, &directory, false);
        let receipt = |s: &SignedSheet| Receipt::read(&receipts[&s.hash().to_string()]);
        assert_eq!(receipt(&sheets[0]), Receipt::Verified);
        let not_of_the_date = |p: &str| {
            Receipt::RefusedOnReceipt(format!(
                "attempt 2 of participant {p} is not an attempt of this date: it opens with attempt 1, and only an act for a bad recording opens the next"
            ))
        };
        assert_eq!(receipt(&sheets[1]), not_of_the_date("p2"));
        assert_eq!(receipt(&sheets[2]), not_of_the_date("p3"));
        let counted: Vec<(&str, u8)> = resolution
            .subjects
            .iter()
            .filter(|(_, r)| r.verdict.current().is_some())
            .map(|(s, _)| (s.participant.as_str(), s.attempt.get()))
            .collect();
        assert_eq!(counted, vec![("p1", 2)]);
    }

    /// Seed 002 §22, §37: an expert scores only in the rooms the head's commission order names
    /// them for. Expectations: expert 1 is named for room 101 (the fixtures' room) and their
    /// sheet counts; expert 2 is named for room 102 only, and their sheet for a participant in
    /// 101 is refused with the reason. An order signed by a key the directory does not certify
    /// as the head's judges nobody.
    #[test]
    fn an_expert_outside_their_rooms_is_refused_on_receipt() {
        use crate::commission::{Commission, RoomCommission};
        let head = PersonId::new("head-1").unwrap();
        let head_key = SigningKey::from_bytes(&[88; 32]);
        let mut directory = directory();
        directory.add_person(
            head,
            crate::codes::PersonRole::Head,
            OrgCode::School(school()),
            head_key.verifying_key(),
        );
        let order = Commission {
            exam: crate::record::fixtures::subject("p1").exam,
            school: school(),
            edition: 1,
            head,
            at: at(1),
            rooms: ["101", "102"]
                .iter()
                .zip([expert(1), expert(2)])
                .map(|(room, e)| RoomCommission {
                    room: crate::codes::RoomCode::new(room).unwrap(),
                    interviewers: vec![PersonId::new("int-1").unwrap()],
                    experts: vec![e],
                })
                .collect(),
        };
        let sheets = [sign(draft("p1", 12, 1), 1), sign(draft("p2", 12, 2), 2)];
        assert_eq!(sheets[0].decode_unverified().unwrap().room.as_str(), "101");
        let remembered = std::cell::Cell::new(usize::MAX);
        let receipt_of = |key: &SigningKey| {
            let orders = [(order.clone(), order.sign(key).unwrap())];
            let (receipts, resolution) = ingest_then(
                &sheets,
                &as_scored(&sheets),
                (&[], &orders),
                &directory,
                false,
                |rcoi, _, _| remembered.set(rcoi.signatures().len()),
            );
            let read = |s: &SignedSheet| Receipt::read(&receipts[&s.hash().to_string()]);
            let counted = resolution
                .subjects
                .values()
                .filter(|r| r.verdict.current().is_some())
                .count();
            (read(&sheets[0]), read(&sheets[1]), counted)
        };
        let not_of_101 = Receipt::RefusedOnReceipt(format!(
            "expert {} is not an expert of room 101 in the school's commission order",
            expert(2)
        ));
        assert_eq!(receipt_of(&head_key), (Receipt::Verified, not_of_101, 1));
        // The order's signature was checked through the РЦОИ's memory and kept there, so the
        // next sheet from the school does not check it again.
        assert_eq!(remembered.get(), 1);
        let forged = SigningKey::from_bytes(&[89; 32]);
        assert_eq!(
            receipt_of(&forged),
            (Receipt::Verified, Receipt::Verified, 2)
        );
        // A forged order is refused and nothing is remembered of it.
        assert_eq!(remembered.get(), 0);
    }

    #[test]
    fn every_sheet_is_receipted_once_with_the_reason_when_invalid() {
        let good = sign(draft("p1", 12, 1), 1);
        let forged = tampered(&sign(draft("p2", 14, 1), 1));
        let late = {
            let mut d = draft("p3", 10, 2);
            d.signed_at = at(20);
            sign(d, 2)
        };
        let mut directory = directory();
        directory.revoke(expert(2), at(10));
        let (receipts, _) = ingest(
            &[good.clone(), forged.clone(), late.clone()],
            &directory,
            false,
        );
        assert_eq!(receipts.len(), 3, "{receipts:?}");
        assert_eq!(receipts[&good.hash().to_string()], RECEIPT_VERIFIED);
        let bad_signature = &receipts[&forged.hash().to_string()];
        assert!(bad_signature.starts_with("invalid: "), "{bad_signature}");
        assert!(bad_signature.contains("signature"), "{bad_signature}");
        let revoked = &receipts[&late.hash().to_string()];
        assert!(revoked.contains("revoked"), "{revoked}");
    }

    /// Hardening item 2: what depends on time is judged at receipt (here `at(30)`), not at the
    /// `signed_at` the signer chose. Expectations written out: which sheet, which verdict.
    #[test]
    fn a_sheet_dated_before_its_experts_revocation_is_judged_when_it_arrived() {
        let signed = |participant: &str, expert: u8, minute: i64| {
            let mut d = draft(participant, 12, expert);
            d.signed_at = at(minute);
            sign(d, expert)
        };
        // Expert 2 is revoked at minute 25; their key still signs, dated minute 5.
        let backdated = signed("p1", 2, 5);
        // Expert 1 is revoked only at minute 100, after the РЦОИ received their sheet.
        let honest = signed("p2", 1, 5);
        // The exam's day is 2024-02-14 (UTC here); minute -180 is 23:00 the day before.
        let day_before = signed("p3", 1, -180);
        // Signed 10 minutes after it arrived: more than clocks differ.
        let from_the_future = signed("p4", 1, 40);
        let mut directory = directory();
        directory.revoke(expert(2), at(25));
        directory.revoke(expert(1), at(100));
        let all = [
            backdated.clone(),
            honest.clone(),
            day_before.clone(),
            from_the_future.clone(),
        ];
        let (receipts, resolution) = ingest(&all, &directory, false);
        let receipt = |s: &SignedSheet| Receipt::read(&receipts[&s.hash().to_string()]);
        assert_eq!(receipt(&honest), Receipt::Verified);
        for (sheet, words) in [
            (&backdated, "revoked"),
            (&day_before, "not between the exam's day"),
            (&from_the_future, "after the РЦОИ received it"),
        ] {
            match receipt(sheet) {
                Receipt::RefusedOnReceipt(reason) => assert!(reason.contains(words), "{reason}"),
                other => panic!("{words}: {other:?}"),
            }
        }
        // The school, holding the receipts, counts only the honest sheet.
        let counted = counted(&resolution);
        assert_eq!(counted, vec!["p2"]);
        let refused: usize = resolution
            .subjects
            .values()
            .flat_map(|r| &r.invalid)
            .filter(|(_, e)| matches!(e, crate::record::SheetError::RefusedOnReceipt(_)))
            .count();
        assert_eq!(refused, 3);
    }

    #[test]
    fn receipts_read_back_from_their_text() {
        for receipt in [
            Receipt::Verified,
            Receipt::Invalid("the signature does not verify".into()),
            Receipt::RefusedOnReceipt("signed at 2024-02-13T23:00:00Z".into()),
        ] {
            assert_eq!(Receipt::read(&receipt.text()), receipt);
        }
        assert_eq!(
            Receipt::Invalid("no such form".into()),
            Receipt::read("no such form")
        );
    }

    /// Sheets a store of layout 1 holds arrived at a time nobody knows: carried over, they are
    /// judged at their `signed_at` as layout 1 judged them, not refused for a revocation made
    /// since the exam.
    #[test]
    fn sheets_carried_over_from_layout_1_are_judged_at_their_signed_at() {
        let mut d = draft("p1", 12, 2);
        d.signed_at = at(5);
        let sheet = sign(d, 2);
        let mut directory = directory();
        directory.revoke(expert(2), at(25));
        let (carried, _) = ingest(std::slice::from_ref(&sheet), &directory, true);
        assert_eq!(
            Receipt::read(&carried[&sheet.hash().to_string()]),
            Receipt::Verified
        );
        let (arrived, _) = ingest(std::slice::from_ref(&sheet), &directory, false);
        assert!(matches!(
            Receipt::read(&arrived[&sheet.hash().to_string()]),
            Receipt::RefusedOnReceipt(_)
        ));
    }
}
