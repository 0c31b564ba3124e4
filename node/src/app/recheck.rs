//! Re-check by another school's commission (seed 002 §71–73, `giasync_shared::recheck`): the
//! reviewing school's head files the request, the РЦОИ grants (or refuses) one recording and
//! one participant's sheets, the reviewing commission's chair signs the re-check protocol, and
//! the РЦОИ counts it for the participant's school, closes the grant and publishes the
//! school's results again.

use std::collections::BTreeMap;

use giasync_shared::calendar::{Date, Timestamp};
use giasync_shared::codes::{NodeRole, PersonId, SchoolCode};
use giasync_shared::content;
use giasync_shared::exam::ExamId;
use giasync_shared::recheck::grant::{self, Answer, Grant};
use giasync_shared::recheck::verdict;
use giasync_shared::recheck::{Recheck, Request};
use giasync_shared::record::{RecordHash, SheetSubject, SignedSheet};
use giasync_shared::recording::{self, Subject};
use giasync_shared::rules::Outcome;
use giasync_shared::statement::Statement;
use giasync_shared::sync::{DocId, DocKind, Engine};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{Actor, Context, Error, RcoiDuty, require_rcoi, school_doc, timestamp};

/// How far from when it is handed in a request or protocol may be dated, in ms.
pub const SIGNED_AT_MS_MAX: i64 = 10 * 60_000;
const DAY_MS: i64 = 86_400_000;

/// Where a request stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RequestState {
    /// Filed; the РЦОИ has not answered.
    Waiting,
    /// Granted: the reviewing school may read the recording until `until`.
    Granted {
        until: Timestamp,
    },
    Refused {
        reason: String,
    },
    /// The grant ended without a re-check counted (the term passed).
    Closed {
        at: Timestamp,
    },
    /// The reviewing commission signed its re-check; the РЦОИ has not counted it (as seen here:
    /// the reviewing school does not read the participant's school's documents).
    Signed {
        total: u16,
        outcome: Outcome,
    },
    /// The РЦОИ counted the re-check: its result is the participant's.
    Rechecked {
        total: u16,
        outcome: Outcome,
    },
}

/// A request as a node that holds it lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRow {
    pub request: RecordHash,
    pub subject: SheetSubject,
    pub reviewer: SchoolCode,
    pub applied: Date,
    pub head: PersonId,
    #[serde(flatten)]
    pub state: RequestState,
}

/// A grant as the reviewing school sees it: what it may read, and the original sheets' scores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantView {
    pub request: RecordHash,
    pub subject: SheetSubject,
    pub recording: giasync_shared::blob::BlobRef,
    pub file_name: String,
    /// The recording's media type, to play it.
    pub mime: String,
    pub duration_ms: u64,
    pub category: giasync_shared::participant::Category,
    /// The participant's sheets of the attempt: expert, total, outcome, signed at.
    pub sheets: Vec<(PersonId, u16, Outcome, Timestamp)>,
    pub until: Timestamp,
    pub open: bool,
    /// The re-check this school signed under the grant, if any: total and outcome.
    pub rechecked: Option<(u16, Outcome)>,
}

/// A record filed: its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filed {
    pub record: RecordHash,
    pub subject: SheetSubject,
}

fn signed_now(at: Timestamp, now_ms: i64) -> Result<(), Error> {
    if (at.unix_ms() - now_ms).abs() > SIGNED_AT_MS_MAX {
        return Err(Error::RecheckOutOfTime { at });
    }
    Ok(())
}

/// This school's protocol for the exam of `subject`, where a request or re-check it hands in is
/// kept: the record must name this school as the reviewer and be signed now.
fn reviewers_protocol(
    engine: &Engine,
    (subject, reviewer): (SheetSubject, SchoolCode),
    at: Timestamp,
    now_ms: i64,
) -> Result<DocId, Error> {
    let protocol = school_doc(engine, DocKind::Protocol, subject.exam)?;
    if protocol.school() != Some(reviewer) {
        return Err(Error::RecordForOther {
            school: reviewer,
            exam: subject.exam,
        });
    }
    signed_now(at, now_ms)?;
    Ok(protocol)
}

fn terms(context: &Context) -> Result<giasync_shared::year::RecheckTerms, Error> {
    context.year.recheck.ok_or_else(|| Error::RecheckNoTerms {
        year: context.year.id.clone(),
    })
}

/// At the reviewing school: checks the head's signed request (signature, certificate, this
/// school, dated now, applied by the year's deadline) and files it in the school's protocol for
/// the attempt's exam, from where it flows up to the РЦОИ.
pub fn request(
    engine: &mut Engine,
    context: &Context,
    actor: &Actor,
    now_ms: i64,
    statement: Vec<u8>,
    cert: &[u8],
) -> Result<Filed, Error> {
    let statement = Statement::from_bytes(statement).map_err(Error::RecheckRefused)?;
    let head = Request::claimed(&statement).map_err(Error::RecheckRefused)?;
    let request = Request::verify(&statement, &context.one_signer(head.as_str(), cert))
        .map_err(Error::RecheckRefused)?;
    actor.may_hand_in(head)?;
    let protocol = reviewers_protocol(
        engine,
        (request.subject, request.reviewer),
        request.at,
        now_ms,
    )?;
    let terms = terms(context)?;
    if request.applied > terms.apply_by {
        return Err(Error::RecheckLate {
            applied: request.applied,
            apply_by: terms.apply_by,
        });
    }
    engine.change(now_ms, protocol, |tx| {
        giasync_shared::recheck::put_request(tx, &statement, head, cert)
    })?;
    Ok(Filed {
        record: statement.hash(),
        subject: request.subject,
    })
}

/// The protocol of the participant's own school for the attempt, if this node holds it.
fn participants_protocol(engine: &Engine, subject: &SheetSubject) -> Option<DocId> {
    engine.doc_ids().copied().find(|d| {
        matches!(d, DocId::School { kind: DocKind::Protocol, school, exam, .. }
            if *school == subject.school && *exam == subject.exam)
    })
}

/// Every request held here, verified, with the protocol that holds it.
fn held_requests(engine: &Engine, context: &Context) -> Vec<(DocId, Statement, Request)> {
    let mut out = Vec::new();
    for doc in engine.doc_ids() {
        let DocId::School {
            kind: DocKind::Protocol,
            school,
            exam,
            ..
        } = *doc
        else {
            continue;
        };
        let Some(protocol) = engine.doc(doc) else {
            continue;
        };
        let heads = context.verifier.experts(&content::head_certs(protocol));
        for statement in giasync_shared::recheck::stored_requests(protocol) {
            match Request::verify(&statement, &heads) {
                Ok(r) if r.reviewer == school && r.subject.exam == exam => {
                    out.push((*doc, statement, r));
                }
                Ok(_) => {
                    warn!(%doc, request = %statement.hash(), "a re-check request filed in another school's protocol")
                }
                Err(e) => {
                    warn!(%doc, request = %statement.hash(), error = %e, "a re-check request does not verify")
                }
            }
        }
    }
    out
}

/// What the РЦОИ grants for a request, or why it refuses.
fn judge(
    engine: &Engine,
    context: &Context,
    (statement, request): (&Statement, &Request),
    now: Timestamp,
) -> Result<Grant, String> {
    let terms = context
        .year
        .recheck
        .ok_or("the year's data sets no re-check terms")?;
    let subject = request.subject;
    if request.applied > terms.apply_by {
        return Err(format!(
            "заявление подано {}, позже последнего дня подачи {} (п. 71)",
            request.applied.ru(),
            terms.apply_by.ru()
        ));
    }
    if request.applied < subject.exam.date() || request.applied > request.at.date_at(context.clock)
    {
        return Err(format!(
            "дата заявления {} — не между днём проведения {} и днём запроса",
            request.applied.ru(),
            subject.exam.date().ru()
        ));
    }
    let protocol = participants_protocol(engine, &subject).ok_or_else(|| {
        format!(
            "протокол ОО {} за {} не найден",
            subject.school, subject.exam
        )
    })?;
    let rcoi = protocol.sibling(DocKind::Rcoi).and_then(|r| engine.doc(&r));
    // A second «незачёт»: admitted to this date after a «незачёт» on an earlier one (§70–71).
    if !rcoi.is_some_and(|r| content::registered_after_fail(r, subject.participant.as_str())) {
        return Err(format!(
            "участник {} допущен на {} не после «незачёта»: повторная проверка предоставляется при повторном «незачёте» (п. 71)",
            subject.participant,
            subject.exam.date().ru()
        ));
    }
    // One re-check of an attempt: none counted, no grant open for it anywhere.
    if rcoi.is_some_and(|r| {
        verdict::stored(r)
            .iter()
            .any(|s| Recheck::claimed_subject(s).is_ok_and(|x| x == subject))
    }) {
        return Err(format!(
            "попытка {} участника {} уже перепроверена",
            subject.attempt.get(),
            subject.participant
        ));
    }
    if let Some((school, until)) = open_grant_of(engine, &subject, now) {
        return Err(format!(
            "попытка уже передана на перепроверку в ОО {school} (до {})",
            until.at_offset(context.clock)
        ));
    }
    let settled = super::scoring::settled_protocol(engine, context, protocol);
    match settled.counted(&subject) {
        Some((_, Outcome::Fail)) => {}
        Some((total, Outcome::Pass)) => {
            return Err(format!(
                "результат участника {} (попытка {}) — «зачёт» ({total}): проверять нечего",
                subject.participant,
                subject.attempt.get()
            ));
        }
        None => {
            return Err(format!(
                "у участника {} нет засчитанного результата попытки {}",
                subject.participant,
                subject.attempt.get()
            ));
        }
    }
    let doc = engine.doc(&protocol).ok_or("протокол ОО не найден")?;
    let held = rcoi.map(recording::blob_receipts).unwrap_or_default();
    let wanted = Subject::Participant {
        id: subject.participant,
        attempt: subject.attempt,
    };
    let recording = recording::recordings(doc)
        .into_values()
        .filter(|r| r.subject == wanted)
        .find(|r| held.contains_key(&r.blob.hash))
        .ok_or_else(|| {
            format!(
                "РЦОИ не хранит аудиозапись ответа участника {} (попытка {})",
                subject.participant,
                subject.attempt.get()
            )
        })?;
    let sheets: Vec<SignedSheet> = content::sheets(doc)
        .into_iter()
        .filter(|s| s.decode_unverified().is_ok_and(|d| d.subject == subject))
        .collect();
    let experts: std::collections::BTreeSet<String> = sheets
        .iter()
        .filter_map(|s| s.decode_unverified().ok())
        .map(|d| d.expert.to_string())
        .collect();
    let certs: BTreeMap<String, Vec<u8>> = content::expert_certs(doc)
        .into_iter()
        .filter(|(id, _)| experts.contains(id))
        .collect();
    let category = rcoi
        .and_then(|r| content::registered_category(r, subject.participant.as_str()))
        .or_else(|| {
            sheets
                .iter()
                .find_map(|s| s.decode_unverified().ok())
                .map(|d| d.category)
        })
        .ok_or("категория участника неизвестна")?;
    let days = i64::from(terms.grant_days);
    Ok(Grant {
        id: statement.hash(),
        request: statement.clone(),
        recording,
        category,
        sheets,
        certs,
        granted_at: now,
        until: now.plus_ms(days * DAY_MS),
        closed: None,
    })
}

/// The reviewing school and term of a grant open at `now` for `subject`, in any РЦОИ document.
fn open_grant_of(
    engine: &Engine,
    subject: &SheetSubject,
    now: Timestamp,
) -> Option<(SchoolCode, Timestamp)> {
    engine
        .doc_ids()
        .filter(|d| d.kind() == Some(DocKind::Rcoi))
        .filter_map(|d| engine.doc(d))
        .flat_map(grant::grants)
        .find(|(g, r)| r.subject == *subject && g.live(now))
        .map(|(g, r)| (r.reviewer, g.until))
}

/// What the РЦОИ answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answered {
    pub request: RecordHash,
    pub subject: SheetSubject,
    pub reviewer: SchoolCode,
    #[serde(flatten)]
    pub state: RequestState,
}

/// At the РЦОИ: answers a filed request. A request that meets the orders is granted — that
/// one recording and that participant's sheets, written into the РЦОИ's document for the
/// reviewing school, readable there until the term passes — and one that does not is refused
/// with the reason in the same document, which gives the school nothing else. A request
/// answered already is not answered again.
pub fn grant(
    engine: &mut Engine,
    context: &Context,
    now_ms: i64,
    request: RecordHash,
) -> Result<Answered, Error> {
    require_rcoi(engine, RcoiDuty::Publish)?;
    let now = timestamp(now_ms)?;
    let (protocol, statement, filed) = held_requests(engine, context)
        .into_iter()
        .find(|(_, s, _)| s.hash() == request)
        .ok_or(Error::NoSuchRequest(request))?;
    let rcoi = protocol.sibling(DocKind::Rcoi).ok_or(Error::NoExam)?;
    if engine
        .doc(&rcoi)
        .is_some_and(|d| grant::answers(d).contains_key(&request))
    {
        return Err(Error::RecheckAnswered(request));
    }
    let state = match judge(engine, context, (&statement, &filed), now) {
        Ok(g) => {
            engine.change(now_ms, rcoi, |tx| grant::put(tx, &g))?;
            info!(%request, subject = %filed.subject, reviewer = %filed.reviewer, until = %g.until, "re-check granted");
            RequestState::Granted { until: g.until }
        }
        Err(reason) => {
            engine.change(now_ms, rcoi, |tx| {
                grant::put_refused(tx, &statement, &reason)
            })?;
            info!(%request, subject = %filed.subject, %reason, "re-check refused");
            RequestState::Refused { reason }
        }
    };
    Ok(Answered {
        request,
        subject: filed.subject,
        reviewer: filed.reviewer,
        state,
    })
}

/// Where each request held here stands, by what the documents here say.
pub fn list(engine: &Engine, context: &Context, now_ms: i64) -> Result<Vec<RequestRow>, Error> {
    let now = timestamp(now_ms)?;
    let mut rows = Vec::new();
    for (protocol, statement, r) in held_requests(engine, context) {
        let hash = statement.hash();
        let answer = protocol
            .sibling(DocKind::Rcoi)
            .and_then(|d| engine.doc(&d))
            .and_then(|d| grant::answers(d).remove(&hash));
        let signed = engine.doc(&protocol).and_then(|d| {
            verdict::stored(d)
                .into_iter()
                .filter_map(|s| {
                    let v = Recheck::verify(&s, &heads_of(context, d), &context.rules).ok()?;
                    (v.grant == hash).then_some((s.hash(), v))
                })
                .next()
        });
        // Counted: the РЦОИ's document for the participant's school holds it (read at the РЦОИ).
        let counted = signed.as_ref().is_some_and(|(h, v)| {
            participants_protocol(engine, &v.subject)
                .and_then(|p| p.sibling(DocKind::Rcoi))
                .and_then(|d| engine.doc(&d))
                .is_some_and(|d| verdict::holds(d, *h))
        });
        let state = match (answer, signed.map(|(_, v)| v)) {
            (_, Some(v)) if counted => RequestState::Rechecked {
                total: v.total,
                outcome: v.outcome,
            },
            (_, Some(v)) => RequestState::Signed {
                total: v.total,
                outcome: v.outcome,
            },
            (None, None) => RequestState::Waiting,
            (Some(Answer::Refused { reason, .. }), None) => RequestState::Refused { reason },
            (Some(Answer::Granted(g)), None) => match g.closed {
                Some(at) => RequestState::Closed { at },
                None if now >= g.until => RequestState::Closed { at: g.until },
                None => RequestState::Granted { until: g.until },
            },
        };
        rows.push(RequestRow {
            request: hash,
            subject: r.subject,
            reviewer: r.reviewer,
            applied: r.applied,
            head: r.head,
            state,
        });
    }
    rows.sort_by_key(|r| (r.subject, r.request));
    Ok(rows)
}

fn heads_of(
    context: &Context,
    protocol: &automerge::Automerge,
) -> giasync_certs::verify::ExpertDirectory {
    context.verifier.experts(&content::head_certs(protocol))
}

/// At the reviewing school: the grants the РЦОИ made it for `exam`.
pub fn grants(
    engine: &Engine,
    context: &Context,
    now_ms: i64,
    exam: ExamId,
) -> Result<Vec<GrantView>, Error> {
    let now = timestamp(now_ms)?;
    let rcoi = school_doc(engine, DocKind::Rcoi, exam)?;
    let protocol = school_doc(engine, DocKind::Protocol, exam)?;
    let signed: Vec<Recheck> = engine
        .doc(&protocol)
        .map(|d| {
            verdict::stored(d)
                .iter()
                .filter_map(|s| Recheck::verify(s, &heads_of(context, d), &context.rules).ok())
                .collect()
        })
        .unwrap_or_default();
    let Some(doc) = engine.doc(&rcoi) else {
        return Ok(Vec::new());
    };
    Ok(grant::grants(doc)
        .into_iter()
        .map(|(g, r)| GrantView {
            request: g.id,
            subject: r.subject,
            recording: g.recording.blob,
            file_name: g.recording.file_name.clone(),
            mime: g.recording.format.mime().to_owned(),
            duration_ms: g.recording.duration_ms,
            category: g.category,
            sheets: g
                .sheets
                .iter()
                .filter_map(|s| s.decode_unverified().ok())
                .map(|d| (d.expert, d.total, d.outcome, d.signed_at))
                .collect(),
            until: g.until,
            open: g.live(now),
            rechecked: signed
                .iter()
                .find(|v| v.grant == g.id)
                .map(|v| (v.total, v.outcome)),
        })
        .collect())
}

/// At the reviewing school: checks the chair's signed re-check protocol (signature, certificate,
/// the rules, this school's commission order in force, dated now, an open grant for the same
/// attempt and recording) and files it in the school's protocol, from where the РЦОИ counts it.
pub fn sign(
    engine: &mut Engine,
    context: &Context,
    actor: &Actor,
    now_ms: i64,
    statement: Vec<u8>,
    cert: &[u8],
) -> Result<Filed, Error> {
    let statement = Statement::from_bytes(statement).map_err(Error::RecheckRefused)?;
    let chair = Recheck::claimed(&statement).map_err(Error::RecheckRefused)?;
    let recheck = Recheck::verify(
        &statement,
        &context.one_signer(chair.as_str(), cert),
        &context.rules,
    )
    .map_err(Error::RecheckRefused)?;
    actor.may_hand_in(chair)?;
    let protocol = reviewers_protocol(
        engine,
        (recheck.subject, recheck.reviewer),
        recheck.at,
        now_ms,
    )?;
    let orders = reviewer_orders(engine, context, protocol);
    recheck
        .check_commission(&orders)
        .map_err(Error::RecheckRefused)?;
    open_grant_for(engine, protocol, &recheck, timestamp(now_ms)?)?;
    engine.change(now_ms, protocol, |tx| {
        verdict::put_signed(tx, &statement, chair, cert)
    })?;
    Ok(Filed {
        record: statement.hash(),
        subject: recheck.subject,
    })
}

/// The commission orders of the reviewing school of `protocol`, from its protocols of every exam
/// of the same kind held here (it need not have held the participant's date).
fn reviewer_orders(
    engine: &Engine,
    context: &Context,
    protocol: DocId,
) -> giasync_shared::commission::Orders {
    let DocId::School {
        municipality,
        school,
        exam,
        ..
    } = protocol
    else {
        return giasync_shared::commission::Orders::default();
    };
    let mut editions = Vec::new();
    for doc in engine.doc_ids() {
        if let DocId::School {
            kind: DocKind::Protocol,
            municipality: m,
            school: s,
            exam: e,
        } = *doc
            && m == municipality
            && s == school
            && e.kind() == exam.kind()
        {
            editions.extend(super::commission::orders(engine, context, *doc).editions);
        }
    }
    giasync_shared::commission::Orders { editions }
}

/// The grant a re-check is made under: open now (not closed, its term not over), made before
/// the re-check was signed, for the same attempt, reviewing school, recording and category of
/// record, from the РЦОИ's document for the reviewing school beside `protocol`.
fn open_grant_for(
    engine: &Engine,
    protocol: DocId,
    recheck: &Recheck,
    now: Timestamp,
) -> Result<Grant, Error> {
    let none = || Error::NoOpenGrant {
        subject: recheck.subject,
    };
    let rcoi = protocol.sibling(DocKind::Rcoi).ok_or_else(none)?;
    let doc = engine.doc(&rcoi).ok_or_else(none)?;
    grant::grants(doc)
        .into_iter()
        .find(|(g, r)| {
            g.id == recheck.grant
                && r.subject == recheck.subject
                && r.reviewer == recheck.reviewer
                && g.recording.blob.hash == recheck.recording
                && g.category == recheck.category
                && g.granted_at <= recheck.at
                && g.live(now)
        })
        .map(|(g, _)| g)
        .ok_or_else(none)
}

/// At the РЦОИ, after a reviewing school's protocol changed: counts each re-check protocol in it
/// not yet counted that verifies (the chair's certificate kept there, the school's commission
/// order in force, the rules, an open grant) in the РЦОИ's document for the participant's
/// school, closes the grant, and publishes that school's results again if they were published.
/// One that does not verify is logged and left uncounted. Returns how many it counted.
pub fn ingest(engine: &mut Engine, context: &Context, protocol: DocId, now_ms: i64) -> usize {
    if engine.identity().role() != NodeRole::Rcoi {
        return 0;
    }
    let Ok(now) = timestamp(now_ms) else {
        return 0;
    };
    let Some(doc) = engine.doc(&protocol) else {
        return 0;
    };
    let statements = verdict::stored(doc);
    if statements.is_empty() {
        return 0;
    }
    let Some(grants_doc) = protocol.sibling(DocKind::Rcoi) else {
        return 0;
    };
    let mut counted = 0;
    for statement in statements {
        let hash = statement.hash();
        // Counted already? The cheap check first.
        let Some(target) = Recheck::claimed_subject(&statement)
            .ok()
            .and_then(|s| participants_protocol(engine, &s))
            .and_then(|p| p.sibling(DocKind::Rcoi))
        else {
            continue;
        };
        if engine.doc(&target).is_some_and(|d| verdict::holds(d, hash)) {
            continue;
        }
        let Some(doc) = engine.doc(&protocol) else {
            return counted;
        };
        let checked = Recheck::verify(&statement, &heads_of(context, doc), &context.rules)
            .and_then(|r| {
                r.check_commission(&reviewer_orders(engine, context, protocol))
                    .map(|()| r)
            });
        let recheck = match checked {
            Ok(r) if protocol.school() == Some(r.reviewer) => r,
            Ok(_) => continue,
            Err(e) => {
                warn!(%protocol, recheck = %hash, error = %e, "a re-check protocol does not verify");
                continue;
            }
        };
        // Judged on the РЦОИ's clock: the grant open now, the record signed after it was made
        // and not ahead of now (a school writes its own protocol and could date it anyhow).
        if recheck.at.unix_ms() > now_ms + SIGNED_AT_MS_MAX {
            warn!(%protocol, recheck = %hash, at = %recheck.at, "a re-check protocol dated ahead of the РЦОИ's clock");
            continue;
        }
        let grant = match open_grant_for(engine, protocol, &recheck, now) {
            Ok(g) => g,
            Err(e) => {
                warn!(%protocol, recheck = %hash, error = %e, "a re-check protocol without an open grant");
                continue;
            }
        };
        let Some(cert) = engine
            .doc(&protocol)
            .and_then(|d| content::head_certs(d).remove(recheck.chair.as_str()))
        else {
            continue;
        };
        // The grant closes first: should the second change fail, the re-check is not counted
        // and cannot be later (its grant is closed), rather than counted under an open grant.
        let written = engine
            .change(now_ms, grants_doc, |tx| {
                grant::put_closed(tx, grant.id, now)
            })
            .and_then(|()| {
                engine.change(now_ms, target, |tx| {
                    verdict::put_counted(tx, &statement, &cert)
                })
            });
        match written {
            Ok(()) => {
                counted += 1;
                info!(recheck = %hash, subject = %recheck.subject, total = recheck.total, outcome = %recheck.outcome, "re-check counted");
                republish(engine, context, now_ms, recheck.subject);
            }
            Err(e) => warn!(recheck = %hash, error = %e, "counting a re-check"),
        }
    }
    counted
}

/// Publishes the participant's school's results again, when they were published, so the school
/// sees the re-check's result.
fn republish(engine: &mut Engine, context: &Context, now_ms: i64, subject: SheetSubject) {
    let Some(protocol) = participants_protocol(engine, &subject) else {
        return;
    };
    let published = protocol
        .sibling(DocKind::Rcoi)
        .and_then(|d| engine.doc(&d))
        .is_some_and(|d| !content::publications(d).is_empty());
    if published && let Err(e) = super::hub::publish_school(engine, context, now_ms, protocol) {
        warn!(%protocol, error = %e, "publishing the re-checked school's results again");
    }
}

/// At the РЦОИ: closes every grant whose term has passed (so that no node gives the recording
/// any more and the reviewing school drops it). Returns how many it closed.
pub fn close_expired(engine: &mut Engine, now_ms: i64) -> Result<usize, Error> {
    if engine.identity().role() != NodeRole::Rcoi {
        return Ok(0);
    }
    let now = timestamp(now_ms)?;
    let due: Vec<(DocId, RecordHash, Timestamp)> = engine
        .doc_ids()
        .filter(|d| d.kind() == Some(DocKind::Rcoi))
        .filter_map(|d| Some((*d, engine.doc(d)?)))
        .flat_map(|(d, doc)| {
            grant::grants(doc)
                .into_iter()
                .filter(|(g, _)| g.closed.is_none() && now >= g.until)
                .map(move |(g, _)| (d, g.id, g.until))
        })
        .collect();
    for (doc, id, until) in &due {
        engine.change(now_ms, *doc, |tx| grant::put_closed(tx, *id, *until))?;
        info!(%doc, grant = %id, "re-check grant closed: its term passed");
    }
    Ok(due.len())
}
