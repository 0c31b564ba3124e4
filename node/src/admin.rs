//! The admin socket and the console: commands for scripts and operators, through the running
//! node (a Unix socket beside its store, since redb lets only one process hold the file) or
//! directly on the store when the node is not running. Both paths run the same
//! [`crate::app::apply`], as the console ([`Actor::Console`]).
//!
//! The socket speaks one JSON request per line and answers one JSON line. A request is a
//! [`Command`] (`"op"` names it) with the protocol version `"v"`; the answer is a [`Response`]:
//! `ok`, a `message` for people, `fields` with the answer as text (for scripts), and the typed
//! `answer` (or, for the large views, `status`, `export`, `oversight`, `school_day`). A client of
//! another version is told which version each side speaks before anything else is read.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use giasync_shared::config::NodeConfig;
use giasync_shared::sync::{Engine, Output, Persist};
use serde::{Deserialize, Serialize};

use crate::app::hub::ExportedFile;
use crate::app::status::Status;
use crate::app::{Actor, Answer, Command, Context, Error};
use crate::store::Store;

/// The version of the socket's protocol. Version 1 had no `"v"` and untyped fields; version 2
/// checks every value as it is read and answers with the typed `answer`.
pub const PROTOCOL_VERSION: u32 = 2;

/// The version a request names (`0` when it names none: a client from before versions).
#[derive(Debug, Deserialize)]
struct Version {
    #[serde(default)]
    v: u32,
}

/// The answer on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The protocol version of the node that answered.
    #[serde(default)]
    pub v: u32,
    pub ok: bool,
    pub message: String,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    #[serde(default)]
    pub status: Option<Status>,
    #[serde(default)]
    pub export: Vec<ExportedFile>,
    #[serde(default)]
    pub oversight: Option<Box<giasync_shared::oversight::Oversight>>,
    #[serde(default)]
    pub school_day: Option<Box<crate::app::day::SchoolDay>>,
    /// The typed answer (the views above travel in their own fields instead).
    #[serde(default)]
    pub answer: Option<Answer>,
}

impl Response {
    /// A refusal with `message`.
    #[must_use]
    pub fn refused(message: impl Into<String>) -> Self {
        Response {
            v: PROTOCOL_VERSION,
            ok: false,
            message: message.into(),
            ..Response::default()
        }
    }
}

/// Renders a command's outcome for the wire: the typed answer, and the message and fields the
/// socket has always carried for people and scripts.
#[must_use]
pub fn respond(outcome: Result<Answer, Error>) -> Response {
    let answer = match outcome {
        Ok(answer) => answer,
        Err(e) => return Response::refused(e.to_string()),
    };
    let mut r = Response {
        v: PROTOCOL_VERSION,
        ok: true,
        ..Response::default()
    };
    r.message = message(&answer);
    r.fields = fields(&answer);
    match answer {
        Answer::Status(status) => r.status = Some(*status),
        Answer::Export(export) => r.export = export.files,
        Answer::Oversight(view) => r.oversight = Some(view),
        Answer::SchoolDay(day) => r.school_day = Some(day),
        Answer::Published(ref p) => {
            // Nothing to publish (no school holds results of the exam) is not a success either.
            r.ok = p.refused.is_empty() && !p.published.is_empty();
            r.answer = Some(answer);
        }
        other => r.answer = Some(other),
    }
    r
}

/// Each school's readiness against the deadline, a line each.
fn readiness_lines(v: &crate::app::readiness::ReadinessView) -> String {
    let ready = v.schools.iter().filter(|s| s.standing == "ready").count();
    let mut m = format!(
        "{}: {} — {ready} of {} schools ready; acts due by {}",
        v.exam,
        v.title,
        v.schools.len(),
        v.due
    );
    for s in &v.schools {
        m.push_str(&format!("\n  school {}: {}", s.school, s.standing));
        if let Some(at) = s.at {
            m.push_str(&format!(" (act of {at})"));
        }
        if !s.failed.is_empty() {
            m.push_str(&format!(", failed: {}", s.failed.join(", ")));
        }
        if s.overdue {
            m.push_str(", OVERDUE");
        } else if s.late {
            m.push_str(", signed after the deadline");
        }
    }
    m
}

/// The materials of each exam, a line each.
fn materials_lines(exams: &[crate::app::materials::ExamMaterials]) -> String {
    if exams.is_empty() {
        return "the region directory names no materials yet".to_owned();
    }
    let mut lines = Vec::new();
    for m in exams {
        let Some(p) = &m.package else {
            lines.push(format!(
                "{}: the package does not verify: {}",
                m.exam,
                m.problem.as_deref().unwrap_or("?")
            ));
            continue;
        };
        let mut line = format!(
            "{}: {} ({} bytes, {} variants) {}; opens at {}",
            m.exam,
            p.name,
            p.blob.bytes,
            p.variants,
            if m.held { "held" } else { "not held yet" },
            p.release_at
        );
        match m.released {
            Some(at) => line.push_str(&format!("; released at {at}")),
            None => line.push_str("; not released"),
        }
        if let Some(at) = m.opened {
            line.push_str(&format!(
                "; opened here at {at} ({})",
                m.opened_by.as_deref().unwrap_or("?")
            ));
        }
        if m.wrong_codes > 0 {
            line.push_str(&format!("; {} wrong codes typed", m.wrong_codes));
        }
        lines.push(line);
    }
    lines.join("\n")
}

fn route_words(route: giasync_shared::year::Route) -> &'static str {
    match route {
        giasync_shared::year::Route::Municipal => "through its МОУО",
        giasync_shared::year::Route::Direct => {
            "straight from the РЦОИ on removable media (giasync-hub bundle write --school)"
        }
    }
}

fn recheck_state(state: &crate::app::recheck::RequestState) -> String {
    use crate::app::recheck::RequestState;
    match state {
        RequestState::Waiting => "waiting for the РЦОИ".to_owned(),
        RequestState::Granted { until } => format!("granted until {until}"),
        RequestState::Refused { reason } => format!("refused: {reason}"),
        RequestState::Closed { at } => format!("grant closed at {at} without a re-check"),
        RequestState::Signed { total, outcome } => format!(
            "re-check signed ({total} {}), not yet counted by the РЦОИ",
            outcome.display_name()
        ),
        RequestState::Rechecked { total, outcome } => {
            format!("re-checked: {total} {}", outcome.display_name())
        }
    }
}

/// The line an operator reads.
fn message(answer: &Answer) -> String {
    match answer {
        Answer::Imported(i) => format!("imported {} participants into {}", i.count, i.doc),
        Answer::RegionImported(i) => {
            let mut text = format!(
                "imported {} participants into the rosters of {} schools for {}",
                i.participants, i.schools, i.exam
            );
            if i.sheets_by_another_category > 0 {
                text.push_str(&format!(
                    "; {} sheets already held score by another category than the list's and no longer count",
                    i.sheets_by_another_category
                ));
            }
            if !i.categories_changed.is_empty() {
                text.push_str(&format!(
                    "; the list changed {} categories of record:",
                    i.categories_changed.len()
                ));
                for c in &i.categories_changed {
                    text.push_str(&format!(
                        "\n  school {} participant {}: {} → {}",
                        c.school,
                        c.participant,
                        c.before.id(),
                        c.after.id()
                    ));
                }
            }
            text
        }
        Answer::CategoryApproved(a) => format!(
            "{}: category of record {} (was {}){}",
            a.participant,
            a.category.id(),
            a.before.id(),
            a.operator.map_or_else(String::new, |o| format!(
                ", approved by {o} on «{}»",
                a.basis
            )),
        ),
        Answer::ActWritten(a) => format!(
            "{} attempt {}: act № {} ({}), signed by {}",
            a.participant,
            a.attempt,
            a.number.as_str(),
            a.kind,
            a.organiser
        ),
        Answer::Rooms { count } => format!("{count} rooms"),
        Answer::Assigned(a) => format!("{} → room {}", a.participant, a.room),
        Answer::Marked(m) => format!("{}: {}", m.participant, m.attendance.word()),
        Answer::Logged(l) => format!(
            "{}: {} at {}{}{}",
            l.participant,
            if l.end { "end" } else { "start" },
            l.at,
            l.attempt
                .map_or_else(String::new, |a| format!(", attempt {a}")),
            l.variant
                .map_or_else(String::new, |v| format!(", variant {v}")),
        ),
        Answer::MaterialsAdded(a) => format!(
            "{}: package {} ({} bytes) named in the region directory; it opens at {} (07:30 local time); the release code is kept on this node",
            a.exam, a.blob.hash, a.blob.bytes, a.release_at
        ),
        Answer::MaterialsCode {
            exam,
            code,
            release_at,
        } => format!("{exam}: release code {code} (released at {release_at} or later)"),
        Answer::MaterialsOpened { exam, at, by, file } => {
            format!("{exam}: materials opened at {at} ({by}) into {file}")
        }
        Answer::Materials { exams } => materials_lines(exams),
        Answer::MaterialsSchools { exam, schools } => {
            let opened = schools.iter().filter(|s| s.opened.is_some()).count();
            let mut m = format!(
                "{exam}: {opened} of {} schools opened the materials",
                schools.len()
            );
            for s in schools {
                m.push_str(&format!(
                    "
  school {}: {}{}",
                    s.school,
                    s.opened.map_or_else(
                        || "not opened".to_owned(),
                        |at| format!("opened at {at} ({})", s.opened_by.as_deref().unwrap_or("?"))
                    ),
                    if s.wrong_codes > 0 {
                        format!(", {} wrong codes", s.wrong_codes)
                    } else {
                        String::new()
                    } + if s.early {
                        ", BEFORE its release time"
                    } else {
                        ""
                    }
                ));
            }
            m
        }
        Answer::ReadinessSigned(r) => format!(
            "{} {}: readiness act signed by {}: {}",
            r.school,
            r.exam,
            r.technician,
            if r.ready {
                "ready".to_owned()
            } else {
                format!("NOT ready ({})", r.failed.join(", "))
            }
        ),
        Answer::Readiness(v) => readiness_lines(v),
        Answer::ReadinessFindings { exam, findings } => {
            let mut m = format!("{exam}: what this node checks by itself");
            for f in findings {
                m.push_str(&format!(
                    "\n  {} {}: {}",
                    if f.ok { "ok  " } else { "FAIL" },
                    f.id,
                    f.note
                ));
            }
            m
        }
        Answer::Participant(e) => e.id.clone(),
        Answer::Roster { entries } => format!("{} participants", entries.len()),
        Answer::Scored(s) => format!(
            "sheet {} saved: {} {}",
            s.hash,
            s.total,
            s.outcome.display_name()
        ),
        Answer::Export(e) => format!("{} files for {}", e.files.len(), e.exam),
        Answer::Conflicts(c) => format!("{} open conflicts in {}", c.open.len(), c.exam),
        Answer::Settled(s) => format!(
            "{}: settled, sheet {} counts (settlement {})",
            s.subject, s.chosen, s.settlement
        ),
        Answer::SchoolRouted(r) => format!(
            "school {}: results go {} (was {})",
            r.school,
            route_words(r.route),
            route_words(r.before)
        ),
        Answer::EssayImported(i) => format!(
            "{}: {} results of {} schools taken in ({} зачёт); publish them with giasync-hub publish --exam {}",
            i.exam, i.participants, i.schools, i.passed, i.exam
        ),
        Answer::RecheckFiled(f) => format!("{}: filed ({})", f.subject, f.record),
        Answer::RecheckAnswered(a) => format!(
            "request {} ({}, re-checked at school {}): {}",
            a.request,
            a.subject,
            a.reviewer,
            recheck_state(&a.state)
        ),
        Answer::Rechecks { requests: rows } => {
            let mut m = format!("{} re-check requests", rows.len());
            for r in rows {
                m.push_str(&format!(
                    "\n  {} {} → school {} (applied {}, head {}): {}",
                    r.request,
                    r.subject,
                    r.reviewer,
                    r.applied,
                    r.head,
                    recheck_state(&r.state)
                ));
            }
            m
        }
        Answer::RecheckGrants { grants } => {
            let mut m = format!("{} grants", grants.len());
            for g in grants {
                m.push_str(&format!(
                    "\n  {} {}: recording {} ({} s), {} sheets, {}{}",
                    g.request,
                    g.subject,
                    g.recording.hash,
                    g.duration_ms / 1000,
                    g.sheets.len(),
                    if g.open {
                        format!("open until {}", g.until)
                    } else {
                        "closed".to_owned()
                    },
                    g.rechecked.map_or_else(String::new, |(t, o)| format!(
                        ", re-checked: {t} {}",
                        o.display_name()
                    ))
                ));
            }
            m
        }
        Answer::Published(p) => {
            let mut m = format!("{}: published for {} schools", p.exam, p.published.len());
            for (school, rows) in &p.published {
                m.push_str(&format!("\n  school {school}: {rows} results"));
            }
            for (school, why) in &p.refused {
                m.push_str(&format!("\n  school {school}: {why}"));
            }
            m
        }
        Answer::Results(r) => format!(
            "{}: {} results published by the РЦОИ at {}, signature verified",
            r.exam,
            r.rows.len(),
            r.at
        ),
        Answer::Familiarised(f) => {
            format!("{}: familiarised, signed by {}", f.participant, f.organiser)
        }
        Answer::AbsenceRecorded(a) => match &a.reason {
            giasync_shared::retake::AbsenceReason::Valid { document } => {
                format!("{}: absent for a valid reason: {document}", a.participant)
            }
            giasync_shared::retake::AbsenceReason::NotValid => {
                format!("{}: absent without a valid reason", a.participant)
            }
        },
        Answer::RecordingNamed(r) => {
            let whose = match (&r.participant, r.attempt) {
                (Some(p), Some(a)) => format!("participant {p}, attempt {a}"),
                _ => "the room's stream".to_owned(),
            };
            format!(
                "recording {} ({}, {:.1} s, {} bytes): {whose}, room {}{}",
                r.hash,
                r.format,
                r.duration_ms as f64 / 1000.0,
                r.bytes,
                r.room,
                if r.again { " (named before)" } else { "" }
            )
        }
        Answer::BackedUp(b) => format!(
            "backup written to {}: {} change chunks, {} blobs, {:.1} MiB",
            b.file.display(),
            b.changes,
            b.blobs,
            b.bytes as f64 / (1024.0 * 1024.0)
        ),
        Answer::BundleWritten(b) => format!(
            "bundle of {} written: {} recordings, {} documents, {:.1} MiB",
            b.node,
            b.recordings,
            b.documents,
            b.bytes as f64 / (1024.0 * 1024.0)
        ),
        Answer::BundleRead(b) => format!(
            "bundle of {} checked and taken in: {} recordings, {} documents",
            b.node, b.recordings, b.documents
        ),
        Answer::RecordingsDestroyed(d) => {
            let mut text = format!(
                "{}: {} recordings destroyed ({:.1} MiB)",
                d.exam,
                d.recordings,
                d.bytes as f64 / (1024.0 * 1024.0)
            );
            if d.kept_not_at_rcoi > 0 {
                text.push_str(&format!(
                    "; {} kept: the РЦОИ does not hold them yet",
                    d.kept_not_at_rcoi
                ));
            }
            text
        }
        Answer::CommissionSigned(c) => format!(
            "commission order edition {}: {} rooms, signed by {}",
            c.edition, c.rooms, c.head
        ),
        Answer::Retakes(r) => {
            let admitted = r.rows.iter().filter(|row| row.admission.is_some()).count();
            let mut m = format!(
                "{}: {admitted} participants must be registered, {} wait for a reason or a result",
                r.exam,
                r.rows.len() - admitted
            );
            for row in &r.rows {
                let why = match (&row.admission, &row.refused) {
                    (Some(a), _) => format!(
                        "attempt {}: {}",
                        row.attempt.unwrap_or_default(),
                        a.describe()
                    ),
                    (None, Some(refused)) => format!("not admitted yet: {refused}"),
                    (None, None) => String::new(),
                };
                m.push_str(&format!(
                    "\n  school {} participant {}: {why}",
                    row.school, row.participant
                ));
            }
            m
        }
        Answer::Status(_) | Answer::Oversight(_) | Answer::SchoolDay(_) | Answer::Lookup { .. } => {
            String::new()
        }
    }
}

/// The answer as text fields, keyed as scripts of version 1 read them.
fn fields(answer: &Answer) -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    match answer {
        Answer::Participant(e) => {
            let attendance = e.attendance.as_ref();
            for (key, value) in [
                ("surname", e.surname.clone()),
                ("given_name", e.given_name.clone()),
                ("patronymic", e.patronymic.clone()),
                ("doc_series", e.series.clone()),
                ("doc_number", e.number.clone()),
                ("class", e.class.clone()),
                (
                    "category",
                    e.category.map(|c| c.id().to_owned()).unwrap_or_default(),
                ),
                (
                    "category_requested",
                    e.requested.map(|c| c.id().to_owned()).unwrap_or_default(),
                ),
                ("room", e.room.map(|r| r.to_string()).unwrap_or_default()),
                (
                    "attendance",
                    attendance.map(|a| a.word().to_owned()).unwrap_or_default(),
                ),
                (
                    "act",
                    attendance
                        .and_then(|a| a.act())
                        .map(|a| a.as_str().to_owned())
                        .unwrap_or_default(),
                ),
            ] {
                if !value.is_empty() {
                    f.insert(key.to_owned(), value);
                }
            }
        }
        Answer::Roster { entries } => {
            for e in entries {
                let text = format!(
                    "{} {}; room {}; {}",
                    e.surname,
                    e.given_name,
                    e.room.map(|r| r.to_string()).unwrap_or_default(),
                    e.attendance.as_ref().map_or("", |a| a.word())
                );
                f.insert(e.id.clone(), text);
            }
        }
        Answer::Conflicts(c) => {
            for open in &c.open {
                let heads: Vec<String> = open
                    .heads
                    .iter()
                    .map(|h| format!("{}:{}:{}", h.hash, h.expert, h.total))
                    .collect();
                let s = &open.subject;
                f.insert(
                    format!("{}/{}/{}", s.school, s.participant, s.attempt.get()),
                    heads.join(" "),
                );
            }
        }
        Answer::Results(r) => {
            // The edition shown: `results familiarise` names it in the record it signs.
            f.insert(RESULTS_EDITION_FIELD.to_owned(), r.edition.to_string());
            for row in &r.rows {
                let mut text = format!("{} {}", row.total, row.outcome.display_name());
                if let Some(at) = row.familiarised {
                    text.push_str(&format!("; familiarised {at}"));
                }
                f.insert(format!("{}/{}", row.participant, row.attempt), text);
            }
        }
        Answer::Lookup { found } => {
            for r in found {
                f.insert(
                    format!("{}/{}", r.exam, r.attempt),
                    format!("{} {}", r.total, r.outcome.id()),
                );
            }
        }
        _ => {}
    }
    f
}

/// The field of a results answer that gives the edition shown (the others are
/// `PARTICIPANT/ATTEMPT`).
pub const RESULTS_EDITION_FIELD: &str = "edition";

/// Reads one request line: the version first, then the command.
pub fn parse_request(line: &str) -> Result<Command, Box<Response>> {
    let bad = |e: serde_json::Error| Box::new(Response::refused(format!("bad request: {e}")));
    let version: Version = serde_json::from_str(line).map_err(bad)?;
    if version.v != PROTOCOL_VERSION {
        return Err(Box::new(Response::refused(format!(
            "this node speaks version {PROTOCOL_VERSION} of the admin protocol, you speak {}: use the giasync tools of the node's own build",
            version.v.max(1)
        ))));
    }
    serde_json::from_str(line).map_err(bad)
}

/// Writes one request line.
pub fn request_line(command: &Command) -> Result<String, serde_json::Error> {
    let mut value = serde_json::to_value(command)?;
    if let serde_json::Value::Object(map) = &mut value {
        map.insert("v".into(), PROTOCOL_VERSION.into());
    }
    let mut line = serde_json::to_string(&value)?;
    line.push('\n');
    Ok(line)
}

/// The admin socket of the node whose store is at `store`.
#[must_use]
pub fn socket_path(store: &Path) -> PathBuf {
    let mut name = store
        .file_name()
        .map(std::ffi::OsStr::to_os_string)
        .unwrap_or_default();
    name.push(".sock");
    store.with_file_name(name)
}

/// Sends `command` to the running node of `config`; an error when it does not run (or died
/// before answering).
pub fn send_to_running(config: &NodeConfig, command: &Command) -> anyhow::Result<Response> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket_path(&config.node.store))?;
    stream.write_all(request_line(command)?.as_bytes())?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    let response: Response = serde_json::from_str(&answer)?;
    if response.v != PROTOCOL_VERSION && response.ok {
        anyhow::bail!(
            "the node speaks version {} of the admin protocol, this tool {PROTOCOL_VERSION}",
            response.v.max(1)
        );
    }
    Ok(response)
}

/// Sends `command` to the running node of `config`, or, when it does not run, applies it
/// directly to its store, as the console.
pub fn execute(
    config: &NodeConfig,
    context: &Context,
    command: &Command,
    now_ms: i64,
) -> anyhow::Result<Response> {
    if std::os::unix::net::UnixStream::connect(socket_path(&config.node.store)).is_ok() {
        return send_to_running(config, command);
    }
    let material = crate::transport::TlsMaterial::from_config(&config.tls)?;
    let key = crate::person::load_node_key(&config.tls.key)?;
    if let Command::Backup { to } = command {
        // The node is stopped: the snapshot is its store opened to read only.
        let db = redb::ReadOnlyDatabase::open(&config.node.store)?;
        let done = crate::backup::backup(
            &db,
            &crate::blobs::dir_beside(&config.node.store),
            (material.identity, key.verifying_key().to_bytes()),
            now_ms,
            to,
        )
        .map_err(|e| crate::app::Error::Backup(e.to_string()));
        return Ok(respond(done.map(Answer::BackedUp)));
    }
    let cert = material
        .cert_chain
        .first()
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let mut engine = Engine::new(
        material.identity,
        key,
        cert,
        Box::new(context.verifier.clone()),
    );
    let blobs = matches!(
        command,
        Command::AddRecording { .. }
            | Command::BundleWrite { .. }
            | Command::BundleRead { .. }
            | Command::DestroyRecordings { .. }
    );
    // A command on documents alone runs on a snapshot, and the store is opened for writing
    // only if it wrote something: a refusal or a read leaves the file byte-for-byte as it was
    // (redb rewrites its header whenever a database opened for writing closes). A store that
    // cannot be read so (not made yet, or to be repaired) is opened for writing at once.
    // What loading itself asks to keep (audit lines of attestations set aside) is written
    // only with what the command writes, so a read stays a read. The write is refused if the
    // store changed since the snapshot (`Store::apply_after`).
    if !blobs && let Ok(snapshot) = Store::open_read_only(&config.node.store) {
        snapshot.load_into(&mut engine)?;
        let seen = snapshot.seq()?;
        drop(snapshot);
        let mut records = persisted(&mut engine);
        let outcome = crate::app::apply(
            &mut engine,
            context,
            &Actor::Console,
            now_ms,
            command.clone(),
        );
        let written = persisted(&mut engine);
        if !written.is_empty() {
            records.extend(written);
            Store::open(&config.node.store)?.apply_after(&records, seen)?;
        }
        return Ok(respond(outcome));
    }
    let store = Store::open(&config.node.store)?;
    store.load_into(&mut engine)?;
    let outcome = match command {
        Command::AddRecording {
            exam,
            file,
            room,
            participant,
            attempt,
            stream,
        } => {
            let (blobs, _) = crate::blobs::BlobStore::open(
                store.database(),
                &crate::blobs::dir_beside(&config.node.store),
                now_ms,
            )?;
            match blobs.intake(file, now_ms) {
                Err(e) => Err(crate::app::Error::RecordingRefused(e.to_string())),
                Ok((blob, info)) => crate::app::recordings::name(
                    &mut engine,
                    context,
                    &Actor::Console,
                    now_ms,
                    crate::app::recordings::TakenIn {
                        exam: *exam,
                        blob,
                        info,
                        file_name: crate::service::file_name(file),
                        room: *room,
                        participant: *participant,
                        attempt: *attempt,
                        stream: *stream,
                    },
                )
                .map(Answer::RecordingNamed),
            }
        }
        Command::BundleWrite { .. } | Command::BundleRead { .. } => {
            let (blobs, _) = crate::blobs::BlobStore::open(
                store.database(),
                &crate::blobs::dir_beside(&config.node.store),
                now_ms,
            )?;
            bundle_offline(&mut engine, context, &blobs, command, now_ms)
        }
        Command::DestroyRecordings { exam } => {
            match crate::app::recordings::due(&engine, context, now_ms, *exam) {
                Err(e) => Err(e),
                Ok((due, kept)) => {
                    let (blobs, _) = crate::blobs::BlobStore::open(
                        store.database(),
                        &crate::blobs::dir_beside(&config.node.store),
                        now_ms,
                    )?;
                    for (_, b) in &due {
                        blobs.remove(&b.hash)?;
                    }
                    crate::app::recordings::record_destruction(
                        &mut engine,
                        now_ms,
                        *exam,
                        &due,
                        kept.len(),
                    )
                    .map(Answer::RecordingsDestroyed)
                }
            }
        }
        other => crate::app::apply(&mut engine, context, &Actor::Console, now_ms, other.clone()),
    };
    store.apply(&persisted(&mut engine))?;
    Ok(respond(outcome))
}

/// What the engine asks to persist after a command.
fn persisted(engine: &mut Engine) -> Vec<Persist> {
    let mut records = Vec::new();
    while let Some(output) = engine.poll_output() {
        if let Output::Persist(p) = output {
            records.push(p);
        }
    }
    records
}

/// A bundle written or read on the store of a node that does not run.
fn bundle_offline(
    engine: &mut Engine,
    context: &Context,
    blobs: &crate::blobs::BlobStore,
    command: &Command,
    now_ms: i64,
) -> Result<Answer, crate::app::Error> {
    Actor::Console.may(command.action())?;
    match command {
        Command::BundleWrite {
            to,
            documents,
            school,
        } => {
            let handed = match school {
                Some(school) => crate::bundle::to_hand_over(engine, *school)?,
                None => Vec::new(),
            };
            let collected = crate::bundle::collect(engine, *documents, *school);
            let (manifest, bytes) =
                crate::bundle::write_files(to, &blobs.files(), &collected, now_ms)?;
            let signature = engine.sign_bundle(manifest.to_text().as_bytes());
            crate::bundle::seal(to, &manifest, &signature, engine.node_cert())?;
            // Handed over once the bundle is whole on the media, not before.
            crate::bundle::hand_over(engine, now_ms, &handed)?;
            Ok(Answer::BundleWritten(crate::bundle::BundleDone {
                node: manifest.node.to_string(),
                recordings: manifest.blobs.len(),
                documents: manifest.docs.len(),
                bytes,
            }))
        }
        Command::BundleRead { from } => {
            let checked = crate::bundle::open(from, &context.verifier)?;
            crate::bundle::fits(&checked, engine.identity())?;
            let refused =
                crate::bundle::take_documents(engine, now_ms, checked.node, &checked.docs);
            if !refused.is_empty() {
                return Err(giasync_shared::bundle::BundleError(format!(
                    "{} documents not taken in whole (see the quarantine)",
                    refused.len()
                ))
                .into());
            }
            for (blob, path) in &checked.blobs {
                let (prepared, _) = blobs
                    .files()
                    .prepare(path)
                    .map_err(|e| crate::app::Error::RecordingRefused(e.to_string()))?;
                if prepared.blob != *blob {
                    return Err(crate::app::Error::RecordingRefused(format!(
                        "{}: changed while it was read",
                        blob.hash
                    )));
                }
                blobs
                    .keep(prepared, now_ms)
                    .map_err(|e| crate::app::Error::RecordingRefused(e.to_string()))?;
                crate::app::recordings::receipt_held(engine, now_ms, *blob)?;
            }
            Ok(Answer::BundleRead(crate::bundle::BundleDone {
                node: checked.node.to_string(),
                recordings: checked.blobs.len(),
                documents: checked.docs.len(),
                bytes: checked.blobs.iter().map(|(b, _)| b.bytes).sum(),
            }))
        }
        _ => Err(crate::app::Error::RecordingNotTakenIn),
    }
}

/// Prints a status, one school a line.
#[must_use]
pub fn format_status(status: &Status) -> String {
    let mut out = format!(
        "node {}: {} documents, {} quarantined\n",
        status.node, status.docs, status.quarantined
    );
    if let Some(warning) = &status.revocation_list {
        out.push_str(&format!("WARNING: {warning}\n"));
    }
    if let Some(warning) = &status.certificate {
        out.push_str(&format!("WARNING: {warning}\n"));
    }
    if status.refused_on_load > 0 {
        out.push_str(&format!(
            "{} stored records set aside at start (certificate no longer valid, or unreadable): see the audit log\n",
            status.refused_on_load
        ));
    }
    if status.peers.is_empty() {
        out.push_str("peers: none yet\n");
    }
    for p in &status.peers {
        out.push_str(&format!(
            "peer {}: {}, last contact {}, {} documents pending\n",
            p.peer,
            match (p.connected, p.link) {
                (true, Some(giasync_shared::sync::Link::Tcp)) => {
                    "connected over TCP (QUIC does not reach it)"
                }
                (true, _) => "connected",
                (false, _) => "not connected",
            },
            p.last_contact.as_deref().unwrap_or("never"),
            p.docs_pending
        ));
    }
    for s in &status.schools {
        out.push_str(&format!(
            "school {}: {} documents, {} participants, {} sheets ({} verified, {} invalid, {} conflicts), {} receipted by the РЦОИ\n",
            s.school, s.docs, s.participants, s.sheets, s.sheets_verified, s.sheets_invalid, s.conflicts, s.sheets_at_rcoi
        ));
        if s.results_published > 0 {
            out.push_str(&format!(
                "  results: {} published, at the school since {}, {} participants familiarised\n",
                s.results_published,
                s.results_delivered.as_deref().unwrap_or("(not yet)"),
                s.familiarised
            ));
        }
        for line in &s.sheet_lines {
            out.push_str(&format!(
                "  sheet {} participant {}: {}; at the РЦОИ: {}\n",
                line.hash.get(..12).unwrap_or(&line.hash),
                line.participant,
                line.result,
                line.at_rcoi
            ));
        }
        if s.recordings > 0 {
            out.push_str(&format!(
                "  recordings: {} ({}), {} receipted by the РЦОИ, {} destroyed by the school\n",
                s.recordings,
                mib(s.recording_bytes),
                s.recordings_at_rcoi,
                s.recordings_destroyed
            ));
        }
    }
    if let Some(b) = &status.blobs {
        out.push_str(&format!(
            "recordings held here: {} ({}); fetching {} ({} left{})\n",
            b.held,
            mib(b.held_bytes),
            b.fetching,
            mib(b.bytes_left),
            match b.eta_s {
                Some(s) => format!(", about {s} s at {}/s", mib(b.rate_bytes_s)),
                None if b.bytes_left > 0 => ", nothing arriving now".to_owned(),
                None => String::new(),
            }
        ));
    }
    out
}

/// Bytes as MiB with one decimal.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is the failure report
    use super::*;

    #[test]
    fn a_request_keeps_the_version_1_fields_and_gains_the_version() {
        let line = r#"{"op":"mark","v":2,"exam":"is-2025-02-12","participant":"p1","status":"early","act":"7"}"#;
        let Command::Mark(m) = parse_request(line).unwrap() else {
            panic!("not a marking");
        };
        assert_eq!(m.participant.as_str(), "p1");
        assert_eq!(m.attendance.word(), "early");
        let back: serde_json::Value =
            serde_json::from_str(&request_line(&Command::Mark(m)).unwrap()).unwrap();
        let expected: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(back, expected);
    }

    #[test]
    fn another_version_and_a_bad_value_are_refused_by_name() {
        let old = parse_request(r#"{"op":"status"}"#).unwrap_err();
        assert!(
            old.message.contains("version 2") && old.message.contains("you speak 1"),
            "{}",
            old.message
        );
        let bad = parse_request(
            r#"{"op":"assign","v":2,"exam":"is-2025-02-12","participant":"p 1","room":"101"}"#,
        )
        .unwrap_err();
        assert!(bad.message.contains("participant id"), "{}", bad.message);
        let act = parse_request(
            r#"{"op":"mark","v":2,"exam":"is-2025-02-12","participant":"p1","status":"early","act":""}"#,
        )
        .unwrap_err();
        assert!(act.message.contains("act number"), "{}", act.message);
    }

    #[test]
    fn a_commands_audit_name_is_its_op_on_the_wire() {
        for line in [
            r#"{"op":"status","v":2}"#,
            r#"{"op":"rooms","v":2,"exam":"is-2025-02-12","rooms":[["101",30]]}"#,
            r#"{"op":"mark","v":2,"exam":"is-2025-02-12","participant":"p1","status":"absent"}"#,
            r#"{"op":"lookup","v":2,"series":"3204","number":"123456"}"#,
            r#"{"op":"school_day","v":2,"exam":null}"#,
        ] {
            let command = parse_request(line).unwrap();
            let wire: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(Some(command.op()), wire["op"].as_str());
        }
    }
}
