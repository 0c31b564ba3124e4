//! Results and familiarisation (seed 002 §66–68): the results the РЦОИ publishes, shown at a
//! school only once their signature verifies as the РЦОИ's; the organiser's signed record that a
//! participant saw their result; and the public look-up at the РЦОИ.

use std::collections::BTreeMap;

use giasync_shared::calendar::Timestamp;
use giasync_shared::codes::{OrgCode, ParticipantId, PersonId, SchoolCode};
use giasync_shared::content;
use giasync_shared::exam::ExamId;
use giasync_shared::participant::IdentityDocument;
use giasync_shared::publish::{Familiarisation, Published};
use giasync_shared::rules::Outcome;
use giasync_shared::statement::StatementKind;
use giasync_shared::sync::{DocId, DocKind, Engine};
use serde::{Deserialize, Serialize};

use super::{Actor, Context, Error, RcoiDuty, handed_in, require_rcoi, school_doc, timestamp};

/// One published result as a school shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultLine {
    pub participant: ParticipantId,
    pub attempt: u8,
    pub total: u16,
    pub outcome: Outcome,
    /// When the participant was informed under signature (on paper), as the organiser's
    /// signed record attests, if they were.
    pub familiarised: Option<Timestamp>,
    /// The organiser whose signature attests it.
    #[serde(default)]
    pub familiarised_by: Option<PersonId>,
    /// When the participant was informed of an earlier result than this one (a re-check's new
    /// edition changed it since), if they were and have not been informed of this one.
    #[serde(default)]
    pub familiarised_earlier: Option<Timestamp>,
    /// For итоговое сочинение (изложение): «зачёт» (true) or «незачёт» per requirement and
    /// criterion, as the РЦОИ signed them.
    #[serde(default)]
    pub marks: Vec<(String, bool)>,
}

/// A school's published results, their signature verified as the РЦОИ's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedResults {
    pub exam: ExamId,
    /// The edition shown (`giasync_shared::publish::Published::edition`): a familiarisation
    /// record names it.
    #[serde(default)]
    pub edition: u32,
    /// When the РЦОИ signed them.
    pub at: Timestamp,
    pub rows: Vec<ResultLine>,
    /// The last day participants are to be informed by, from the year's chain for the exam's
    /// kind (`[node] year`): for итоговое собеседование the exam day + 5 (seed 002 §74); a step
    /// counted from the results' arrival counts from their publication.
    #[serde(default)]
    pub familiarise_by: Option<giasync_shared::calendar::Date>,
}

/// How far from when it is handed in a familiarisation record may be dated: it is signed as
/// the participant signs the paper.
pub const FAMILIARISED_AT_MS_MAX: i64 = 10 * 60_000;

/// A familiarisation record stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Familiarised {
    pub participant: ParticipantId,
    pub organiser: PersonId,
}

/// One result found by the look-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    pub exam: ExamId,
    pub attempt: u8,
    pub total: u16,
    pub outcome: Outcome,
}

/// The newest published results in a school's РЦОИ document whose signature verifies as the
/// РЦОИ's.
pub(crate) fn verified_results(
    rcoi: &automerge::Automerge,
    context: &Context,
    exam: ExamId,
    school: SchoolCode,
) -> Result<Published, Error> {
    let stored = content::publications(rcoi);
    if stored.is_empty() {
        return Err(Error::NoResults { exam });
    }
    giasync_shared::publish::latest(&stored, &context.verifier, exam, school)
        .map_err(Error::ResultsRefused)
}

/// The newest verified publication of `doc`'s school and exam, from its РЦОИ document.
fn published_for(engine: &Engine, context: &Context, doc: DocId) -> Result<Published, Error> {
    let (DocId::School { school, exam, .. }, Some(rcoi)) = (doc, doc.sibling(DocKind::Rcoi)) else {
        return Err(Error::NotASchool {
            node: engine.identity(),
        });
    };
    let rcoi = engine.doc(&rcoi).ok_or(Error::NoResults { exam })?;
    verified_results(rcoi, context, exam, school)
}

/// The newest verified publication of `doc`'s school and exam, and every one that verifies by
/// edition (the newest among them), each checked once.
fn in_force(
    engine: &Engine,
    context: &Context,
    doc: DocId,
) -> Result<(Published, BTreeMap<u32, Published>), Error> {
    let editions = editions(engine, context, doc);
    match editions.values().next_back() {
        Some(newest) => Ok((newest.clone(), editions)),
        // None verifies: the reason, as the newest stored gives it.
        None => published_for(engine, context, doc).map(|p| (p, editions)),
    }
}

/// Every verified publication of `doc`'s school and exam, by edition, from its РЦОИ document.
pub(crate) fn editions(engine: &Engine, context: &Context, doc: DocId) -> BTreeMap<u32, Published> {
    let (DocId::School { school, exam, .. }, Some(rcoi)) = (doc, doc.sibling(DocKind::Rcoi)) else {
        return BTreeMap::new();
    };
    engine.doc(&rcoi).map_or_else(BTreeMap::new, |rcoi| {
        giasync_shared::publish::all_verified(
            &content::publications(rcoi),
            &context.verifier,
            exam,
            school,
        )
    })
}

/// The verified familiarisation records of a results document, by participant, split by
/// whether they inform of the rows the newest of `editions` gives the participant
/// (`Familiarisation::informs_of`): (those that do, those of an earlier result).
pub(crate) fn familiarised(
    results: &automerge::Automerge,
    context: &Context,
    editions: &BTreeMap<u32, Published>,
) -> (
    BTreeMap<ParticipantId, Familiarisation>,
    BTreeMap<ParticipantId, Familiarisation>,
) {
    let since = giasync_shared::publish::rows_since(editions);
    let newest = editions.keys().next_back().copied().unwrap_or_default();
    let directory = context.verifier.experts(&content::organiser_certs(results));
    content::acks(results)
        .iter()
        .filter_map(|s| Familiarisation::verify(s, &directory).ok())
        .filter(|f| since.contains_key(&f.participant))
        .map(|f| (f.participant, f))
        .partition(|(p, f)| since.get(p).is_some_and(|s| f.informs_of(*s, newest)))
}

/// The last day of the familiarisation step of the year's chain for `exam`, counted from the
/// exam day, or else from `published` (the results are here, so whatever step brought them is
/// done).
fn familiarise_by(
    context: &Context,
    exam: ExamId,
    published: Timestamp,
) -> Option<giasync_shared::calendar::Date> {
    use giasync_shared::year::{Anchor, ChainStep, Route};
    let chain = context.year.chain(exam.kind(), Route::Municipal)?;
    let step = chain
        .steps
        .iter()
        .find(|s| s.step == ChainStep::Familiarisation)?;
    let anchor = match step.after {
        Anchor::Exam => exam.date(),
        Anchor::Processed | Anchor::Step(_) => published.date_at(context.clock),
    };
    Some(step.due(anchor, &context.calendar))
}

/// At a school: the published results, once their РЦОИ signature verifies, with each
/// participant's familiarisation.
pub fn published(
    engine: &Engine,
    context: &Context,
    exam: ExamId,
) -> Result<PublishedResults, Error> {
    let doc = school_doc(engine, DocKind::Results, exam)?;
    let (published, editions) = in_force(engine, context, doc)?;
    let (acks, earlier) = engine
        .doc(&doc)
        .map(|results| familiarised(results, context, &editions))
        .unwrap_or_default();
    Ok(PublishedResults {
        exam,
        edition: published.edition,
        at: published.at,
        familiarise_by: familiarise_by(context, exam, published.at),
        rows: published
            .rows
            .iter()
            .map(|r| ResultLine {
                participant: r.participant,
                attempt: r.attempt,
                total: r.total,
                outcome: r.outcome,
                familiarised: acks.get(&r.participant).map(|f| f.at),
                familiarised_by: acks.get(&r.participant).map(|f| f.organiser),
                familiarised_earlier: earlier.get(&r.participant).map(|f| f.at),
                marks: r.marks.clone(),
            })
            .collect(),
    })
}

/// At a school: stores an organiser's signed familiarisation record, after checking its
/// signature, that it is for this school and exam, that the participant has a published
/// result, and that the edition it names is the newest here (the participant was shown the
/// results in force). A person may hand in only a record they signed.
#[allow(clippy::too_many_arguments)]
pub fn familiarise(
    engine: &mut Engine,
    context: &Context,
    actor: &Actor,
    now_ms: i64,
    exam: ExamId,
    statement: Vec<u8>,
    organiser_cert: &[u8],
) -> Result<Familiarised, Error> {
    let doc = school_doc(engine, DocKind::Results, exam)?;
    let school = doc.school().ok_or(Error::NoResults { exam })?;
    let (statement, record) = handed_in(
        context,
        actor,
        statement,
        (StatementKind::Familiarisation, "organiser"),
        organiser_cert,
        |s, d| Familiarisation::verify(s, d),
        |r: &Familiarisation| (r.organiser, r.exam, r.school),
        (exam, school),
    )?;
    let (published, editions) = in_force(engine, context, doc)?;
    if !published
        .rows
        .iter()
        .any(|r| r.participant == record.participant)
    {
        return Err(Error::NoPublishedResult(record.participant));
    }
    // The record names the edition shown, one giving the participant the rows in force (a
    // page loaded before a re-check of someone else's result still shows theirs), and is
    // signed as it is handed in: a record dated ahead would count for editions to come.
    let Some(shown) = record.edition else {
        return Err(Error::RecordRefused(
            giasync_shared::statement::StatementError::Invalid(
                "the record names no edition of the results".into(),
            ),
        ));
    };
    let since = giasync_shared::publish::rows_since(&editions);
    if !since
        .get(&record.participant)
        .is_some_and(|(first, _)| (*first..=published.edition).contains(&shown))
    {
        return Err(Error::ResultsChangedSince {
            shown,
            now: published.edition,
        });
    }
    if (record.at.unix_ms() - now_ms).abs() > FAMILIARISED_AT_MS_MAX {
        return Err(Error::FamiliarisedOutOfTime { at: record.at });
    }
    engine.change(now_ms, doc, |tx| {
        content::put_ack(
            tx,
            record.participant,
            &statement,
            record.organiser,
            organiser_cert,
        )
    })?;
    Ok(Familiarised {
        participant: record.participant,
        organiser: record.organiser,
    })
}

/// At a school: notes in the results document when the node first verified published results
/// (the МОУО and РЦОИ see when results reached the school). `doc` is any of the school's
/// documents for the exam. Returns whether it wrote.
pub fn note_delivery(engine: &mut Engine, context: &Context, doc: DocId, now_ms: i64) -> bool {
    let (Some(school), Some(results)) = (doc.school(), doc.sibling(DocKind::Results)) else {
        return false;
    };
    if engine.identity().org != OrgCode::School(school) {
        return false;
    }
    if engine
        .doc(&results)
        .is_some_and(|r| content::delivered(r).is_some())
        || published_for(engine, context, results).is_err()
    {
        return false;
    }
    let Ok(at) = timestamp(now_ms) else {
        return false;
    };
    engine
        .change(now_ms, results, |tx| content::put_delivered(tx, at))
        .is_ok()
}

/// At the РЦОИ: a participant's published results by identity document, as the regional
/// register (the РЦОИ's document for each school) records it; what a school writes in its roster
/// is not read, so a school cannot point a document at another participant's results. Unknown and
/// not yet published answer alike: nothing. A document that two schools' registers list for the
/// same exam answers nothing for that exam (the РЦОИ's region import refuses such a list).
pub fn lookup(
    engine: &Engine,
    context: &Context,
    document: &IdentityDocument,
) -> Result<Vec<Found>, Error> {
    require_rcoi(engine, RcoiDuty::Lookup)?;
    let mut schools_listing: BTreeMap<ExamId, std::collections::BTreeSet<SchoolCode>> =
        BTreeMap::new();
    let mut found = Vec::new();
    for rcoi in engine.doc_ids() {
        let DocId::School {
            kind: DocKind::Rcoi,
            school,
            exam,
            ..
        } = *rcoi
        else {
            continue;
        };
        let Some(doc) = engine.doc(rcoi) else {
            continue;
        };
        let ids = content::find_by_document(doc, document.series(), document.number());
        if ids.is_empty() {
            continue;
        }
        schools_listing.entry(exam).or_default().insert(school);
        let Ok(published) = verified_results(doc, context, exam, school) else {
            continue;
        };
        found.extend(
            published
                .rows
                .iter()
                .filter(|r| ids.iter().any(|id| id == r.participant.as_str()))
                .map(|r| Found {
                    exam,
                    attempt: r.attempt,
                    total: r.total,
                    outcome: r.outcome,
                }),
        );
    }
    found.retain(|f| schools_listing.get(&f.exam).is_some_and(|s| s.len() == 1));
    found.sort_by_key(|f| (f.exam, f.attempt));
    Ok(found)
}
