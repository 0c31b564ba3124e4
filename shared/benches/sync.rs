//! What the sync engine sends, measured on an in-memory network (no sockets: bytes are frames).
//!
//! `cargo bench -p giasync-shared --bench sync` prints:
//! 1. one school's full exam day (200 participants: roster, room log, 200 signed sheets) synced
//!    to its hub from nothing: bytes and round trips, against the size of the saved documents;
//! 2. a hub holding 600 schools reconnecting to the РЦОИ when none, 10 and all of them changed;
//! 3. the hub's peak memory (VmHWM) holding those 600 schools' documents.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use automerge::sync::{self, SyncDoc};
use automerge::{Automerge, ReadDoc};
use ed25519_dalek::SigningKey;
use giasync_shared::calendar::Timestamp;
use giasync_shared::codes::{
    MunicipalityCode, NodeRole, OrgCode, ParticipantId, PersonId, RegionCode, RoomCode, SchoolCode,
};
use giasync_shared::content;
use giasync_shared::participant::{Category, FullName, IdentityDocument, Participant, SchoolClass};
use giasync_shared::record::{Attempt, SheetDraft, SheetSubject, SignedSheet};
use giasync_shared::rules::Rules;
use giasync_shared::sync::{DocId, DocKind, Engine, FixedCa, Input, NodeIdentity, Output, PeerId};

const REGION: &str = "42";
const EXAM: &str = "is-2024-02-14";

fn school_identity(m: &str, s: &str) -> NodeIdentity {
    NodeIdentity {
        region: RegionCode::new(REGION).expect("region"),
        org: OrgCode::parse(NodeRole::School, s).expect("school"),
        municipality: Some(MunicipalityCode::new(m).expect("municipality")),
    }
}

fn engine(ca: &FixedCa, identity: NodeIdentity, seed: u64) -> Engine {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_be_bytes());
    bytes[8] = 1;
    let key = SigningKey::from_bytes(&bytes);
    let cert = ca.issue(identity, &key);
    Engine::new(identity, key, cert, Box::new(ca.clone()))
}

/// Two engines joined by a lossless link; counts bytes and round trips (a round trip is a
/// batch of frames answered by the other side).
struct Link {
    bytes: usize,
    frames: usize,
    round_trips: usize,
}

/// One connection between two engines, with peer ids of its own: a frame an engine made for an
/// earlier connection (to a peer id that has ended) is dropped, as the node's driver drops it,
/// never delivered into a later one.
struct Session {
    /// `b` as `a` knows it, and `a` as `b` knows it.
    at_a: PeerId,
    at_b: PeerId,
}

/// Peer ids are never reused: each session takes two new ones.
static NEXT_PEER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Opens a session between `a` and `b`; frames either engine made before it are dropped.
fn connect(a: &mut Engine, b: &mut Engine, now: i64) -> Session {
    while a.poll_output().is_some() {}
    while b.poll_output().is_some() {}
    let next = NEXT_PEER.fetch_add(2, std::sync::atomic::Ordering::Relaxed);
    let session = Session {
        at_a: next,
        at_b: next + 1,
    };
    a.handle(
        now,
        Input::Connected {
            peer: session.at_a,
            identity: b.identity(),
            wire: giasync_shared::sync::wire::WIRE_VERSION,
            link: giasync_shared::sync::Link::Quic,
        },
    );
    b.handle(
        now,
        Input::Connected {
            peer: session.at_b,
            identity: a.identity(),
            wire: giasync_shared::sync::wire::WIRE_VERSION,
            link: giasync_shared::sync::Link::Quic,
        },
    );
    session
}

fn disconnect(a: &mut Engine, b: &mut Engine, session: &Session, now: i64) {
    a.handle(now, Input::Disconnected { peer: session.at_a });
    b.handle(now, Input::Disconnected { peer: session.at_b });
}

/// The frames `engine` sends to `peer`; frames for any other peer are dropped.
fn sent_to(engine: &mut Engine, peer: PeerId) -> VecDeque<Vec<u8>> {
    std::iter::from_fn(|| engine.poll_output())
        .filter_map(|o| match o {
            Output::Send { peer: to, bytes } if to == peer => Some(bytes),
            _ => None,
        })
        .collect()
}

/// Delivers frames both ways within `session` until both sides are quiet.
fn exchange(a: &mut Engine, b: &mut Engine, session: &Session, now: &mut i64) -> Link {
    let mut link = Link {
        bytes: 0,
        frames: 0,
        round_trips: 0,
    };
    loop {
        let to_b = sent_to(a, session.at_a);
        let to_a = sent_to(b, session.at_b);
        if to_a.is_empty() && to_b.is_empty() {
            return link;
        }
        link.round_trips += 1;
        *now += 1;
        for bytes in &to_b {
            trace(bytes);
            link.bytes += bytes.len();
            link.frames += 1;
            b.handle(
                *now,
                Input::Received {
                    peer: session.at_b,
                    bytes,
                },
            );
        }
        for bytes in &to_a {
            link.bytes += bytes.len();
            link.frames += 1;
            a.handle(
                *now,
                Input::Received {
                    peer: session.at_a,
                    bytes,
                },
            );
        }
    }
}

/// With `SYNC_BENCH_TRACE` set: what each frame carries.
fn trace(bytes: &[u8]) {
    if std::env::var("SYNC_BENCH_TRACE").is_err() {
        return;
    }
    if let Ok(giasync_shared::sync::wire::Frame::Sync {
        doc,
        message,
        attestations,
    }) = giasync_shared::sync::wire::Frame::decode(bytes)
    {
        let m = automerge::sync::Message::decode(&message)
            .map(|m| (m.changes.len(), m.version))
            .ok();
        eprintln!(
            "→ sync {doc}: {} bytes, message {} bytes {m:?}, {} attestations",
            bytes.len(),
            message.len(),
            attestations.len()
        );
    } else {
        eprintln!(
            "→ frame {} bytes type {}",
            bytes.len(),
            bytes.get(1).copied().unwrap_or(0)
        );
    }
}

/// A whole session: connect, exchange until quiet, disconnect.
fn sync_session(a: &mut Engine, b: &mut Engine, now: &mut i64) -> Link {
    let session = connect(a, b, *now);
    let link = exchange(a, b, &session, now);
    disconnect(a, b, &session, *now);
    link
}

/// The same documents under plain automerge sync, as automerge-repo runs it: one sync state per
/// document, fresh after every reconnect, every document's messages exchanged side by side. The
/// bytes are the sync messages and the id of the document each is for; nothing proves who
/// wrote a change (no attestation, certificate or frame), so this is the floor giasync's
/// authorship costs are measured against.
type Docs = BTreeMap<DocId, Automerge>;

/// The documents `engine` holds, copied.
fn docs_of(engine: &Engine) -> Docs {
    engine
        .doc_ids()
        .filter_map(|id| Some((*id, engine.doc(id)?.clone())))
        .collect()
}

/// A side of a plain session: its documents and its sync state per document.
struct Side<'d> {
    docs: &'d mut Docs,
    states: BTreeMap<DocId, sync::State>,
}

/// Sends, for each document, the message automerge has from `from` to `to`; a document `to`
/// lacks is started empty, as a repo answering a request does. False when nothing was sent.
fn plain_step(
    from: &mut Side,
    to: &mut Side,
    link: &mut Link,
) -> Result<bool, Box<dyn std::error::Error>> {
    let mut sent = false;
    for (id, doc) in from.docs.iter_mut() {
        let state = from.states.entry(*id).or_default();
        let Some(message) = doc.generate_sync_message(state) else {
            continue;
        };
        let bytes = message.encode();
        link.bytes += bytes.len() + id.to_string().len();
        link.frames += 1;
        sent = true;
        to.docs.entry(*id).or_default().receive_sync_message(
            to.states.entry(*id).or_default(),
            sync::Message::decode(&bytes)?,
        )?;
    }
    Ok(sent)
}

/// One plain session between `a` and `b` over every document either holds, from fresh sync
/// states, until both are quiet.
fn plain_session(a: &mut Docs, b: &mut Docs) -> Result<Link, Box<dyn std::error::Error>> {
    let mut link = Link {
        bytes: 0,
        frames: 0,
        round_trips: 0,
    };
    for id in b.keys() {
        a.entry(*id).or_default();
    }
    let mut a = Side {
        docs: a,
        states: BTreeMap::new(),
    };
    let mut b = Side {
        docs: b,
        states: BTreeMap::new(),
    };
    loop {
        let from_a = plain_step(&mut a, &mut b, &mut link)?;
        let from_b = plain_step(&mut b, &mut a, &mut link)?;
        if !from_a && !from_b {
            return Ok(link);
        }
        link.round_trips += 1;
    }
}

/// Asserts that `to` holds every document of `from`, at the same heads.
fn assert_plain_holds_all(from: &Docs, to: &Docs, what: &str) {
    assert!(!from.is_empty(), "{what}: nothing to compare");
    for (id, ours) in from {
        let Some(theirs) = to.get(id) else {
            panic!("{what}: {id} did not arrive");
        };
        let (mut a, mut b) = (ours.get_heads(), theirs.get_heads());
        a.sort();
        b.sort();
        assert_eq!(a, b, "{what}: {id} differs");
    }
}

/// Asserts that `to` holds every document of `from` it may read, at the same heads.
fn assert_holds_all(from: &Engine, to: &Engine, what: &str) {
    let mut checked = 0;
    for id in from.doc_ids() {
        if !id.readable_by(&to.identity()) {
            continue;
        }
        let (Some(ours), Some(theirs)) = (from.doc(id), to.doc(id)) else {
            panic!("{what}: {id} did not arrive");
        };
        let (mut a, mut b) = (ours.get_heads(), theirs.get_heads());
        a.sort();
        b.sort();
        assert_eq!(a, b, "{what}: {id} differs");
        checked += 1;
    }
    assert!(checked > 0, "{what}: nothing to compare");
}

fn exam_day(
    school: &mut Engine,
    m: &str,
    s: &str,
    participants: usize,
    rules: &Rules,
    expert: &SigningKey,
    now: &mut i64,
) -> Result<(), Box<dyn std::error::Error>> {
    let roster: DocId = format!("roster/{m}/{s}/{EXAM}").parse()?;
    let protocol: DocId = format!("protocol/{m}/{s}/{EXAM}").parse()?;
    let mut people = Vec::new();
    for i in 0..participants {
        people.push(Participant {
            id: ParticipantId::new(&format!("{s}-{i:04}"))?,
            name: FullName::new("Иванова", "Анна", "Сергеевна")?,
            document: IdentityDocument::new("3204", &format!("{i:06}"))?,
            class: SchoolClass::new("9А")?,
            category: Category::Standard,
        });
    }
    // The roster arrives in one import, then each participant's day is a few small edits.
    *now += 1;
    school.change(*now, roster, |tx| {
        people
            .iter()
            .try_for_each(|p| content::put_participant(tx, p))
    })?;
    let category = rules.category(Category::Standard)?;
    let cert = vec![7u8; 480];
    let interviewer = PersonId::new("int-1")?;
    let expert_id = PersonId::new("exp-1")?;
    for (i, p) in people.iter().enumerate() {
        let room = RoomCode::new(if i % 2 == 0 { "101" } else { "102" })?;
        *now += 60_000;
        school.change(*now, roster, |tx| content::assign(tx, p.id, room))?;
        let start = Timestamp::from_unix_ms(*now)?;
        school.change(*now, protocol, |tx| {
            content::log_time(tx, p.id, Attempt::FIRST, Some(interviewer), start, false)
        })?;
        *now += 16 * 60_000;
        let end = Timestamp::from_unix_ms(*now)?;
        let points = category
            .criteria(rules)
            .map(|c| (c.id, i64::from(c.max) - i64::from(i % 2 == 0)))
            .collect();
        let draft = SheetDraft {
            subject: SheetSubject {
                exam: EXAM.parse()?,
                school: SchoolCode::new(s)?,
                participant: p.id,
                attempt: Attempt::new(1)?,
            },
            room,
            category: Category::Standard,
            points,
            expert: expert_id,
            signed_at: end,
            correction: None,
        };
        let sheet = SignedSheet::sign(draft, rules, expert)?;
        school.change(*now, protocol, |tx| {
            content::log_time(tx, p.id, Attempt::FIRST, Some(interviewer), end, true)?;
            content::put_sheet(tx, &sheet, expert_id, &cert)
        })?;
    }
    Ok(())
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `GIASYNC_BENCH_SHORT=1` (CI): 30 schools instead of 600, the same checks.
    let short = std::env::var("GIASYNC_BENCH_SHORT").is_ok();
    let (hub_schools, participants): (usize, usize) = if short { (30, 40) } else { (600, 200) };
    let ca = FixedCa::default();
    let rules = Rules::is_2024()?;
    let expert = SigningKey::from_bytes(&[9; 32]);
    let region = RegionCode::new(REGION)?;
    let mut now = 1_707_876_000_000i64;

    // 1. One school's exam day to its hub.
    let moyo = NodeIdentity {
        region,
        org: OrgCode::Municipality(MunicipalityCode::new("4201")?),
        municipality: None,
    };
    let mut school = engine(&ca, school_identity("4201", "420101"), 1);
    exam_day(
        &mut school,
        "4201",
        "420101",
        participants,
        &rules,
        &expert,
        &mut now,
    )?;
    let saved: usize = school
        .doc_ids()
        .filter_map(|d| school.doc(d))
        .map(|d| d.save().len())
        .sum();
    let changes: usize = school
        .doc_ids()
        .filter_map(|d| school.doc(d))
        .map(|d| d.get_changes(&[]).len())
        .sum();
    let mut hub = engine(&ca, moyo, 2);
    let t = Instant::now();
    let link = sync_session(&mut school, &mut hub, &mut now);
    let day_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_holds_all(&school, &hub, "one school's day at its hub");
    println!(
        "one school's exam day ({participants} participants, {changes} changes) to its hub from nothing: {} bytes in {} frames, {} round trips, {:.0} ms; saved documents {} bytes: {:.2}×",
        link.bytes,
        link.frames,
        link.round_trips,
        day_ms,
        saved,
        link.bytes as f64 / saved as f64
    );

    let mut rows = vec![Row {
        what: format!("one school's day ({participants} participants) from nothing"),
        giasync: link,
        giasync_ms: day_ms,
        plain: None,
    }];
    let mut plain_school = docs_of(&school);
    let mut plain_hub = Docs::new();
    let t = Instant::now();
    let plain = plain_session(&mut plain_school, &mut plain_hub)?;
    rows[0].plain = Some((plain, t.elapsed().as_secs_f64() * 1e3));
    assert_plain_holds_all(
        &plain_school,
        &plain_hub,
        "plain: one school's day at its hub",
    );
    drop((plain_school, plain_hub));

    // 2. A hub holding the documents of many schools, reconnecting to the РЦОИ.
    let rcoi_id = NodeIdentity {
        region,
        org: OrgCode::Rcoi(region),
        municipality: None,
    };
    let mut hub = engine(&ca, moyo, 3);
    let mut rcoi = engine(&ca, rcoi_id, 4);
    let mut schools: Vec<(String, Engine)> = Vec::new();
    for i in 0..hub_schools as u64 {
        let code = format!("4201{i:03}");
        let mut s = engine(&ca, school_identity("4201", &code), 100 + i);
        exam_day(&mut s, "4201", &code, 10, &rules, &expert, &mut now)?;
        sync_session(&mut s, &mut hub, &mut now);
        schools.push((code, s));
    }
    let held: usize = hub.doc_ids().count();
    assert_eq!(held, 2 * hub_schools, "a roster and a protocol per school");
    println!(
        "hub holds {held} documents of {hub_schools} schools; peak memory so far {} MiB",
        peak_rss_kib() / 1024
    );
    let t = Instant::now();
    let first = sync_session(&mut hub, &mut rcoi, &mut now);
    let first_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_holds_all(&hub, &rcoi, "the hub's schools at the РЦОИ");
    println!(
        "hub → РЦОИ first sync of {hub_schools} schools: {} bytes, {} frames, {} round trips",
        first.bytes, first.frames, first.round_trips
    );
    // The hub's heads at each reconnect, for the plain side, which runs after the memory
    // figure below so that its copies of the documents do not count in it.
    let mut stages = vec![(
        format!("hub → РЦОИ first sync, {} documents", held),
        heads_of(&hub),
    )];
    rows.push(Row {
        what: stages[0].0.clone(),
        giasync: first,
        giasync_ms: first_ms,
        plain: None,
    });
    for changed in [0, 10, hub_schools] {
        // The schools change while the hub is away from the РЦОИ, and reach the hub.
        for (code, s) in schools.iter_mut().take(changed) {
            let protocol: DocId = format!("protocol/4201/{code}/{EXAM}").parse()?;
            now += 1;
            s.change(now, protocol, |tx| {
                automerge::transaction::Transactable::put(
                    tx,
                    automerge::ROOT,
                    "note",
                    format!("late change {now}"),
                )
                .map(|_| ())
            })?;
            sync_session(s, &mut hub, &mut now);
        }
        stages.push((
            format!("hub reconnects to the РЦОИ, {changed} schools changed"),
            heads_of(&hub),
        ));
        let t = Instant::now();
        let link = sync_session(&mut hub, &mut rcoi, &mut now);
        let ms = t.elapsed().as_secs_f64() * 1e3;
        assert_holds_all(&hub, &rcoi, "after the reconnect");
        for (_, s) in schools.iter().take(changed) {
            assert_holds_all(s, &rcoi, "each changed school's documents at the РЦОИ");
        }
        println!(
            "hub of {hub_schools} schools reconnects to the РЦОИ, {changed:>3} changed: {:>8} bytes, {:>5} frames, {:>2} round trips, {:.0} ms",
            link.bytes, link.frames, link.round_trips, ms
        );
        rows.push(Row {
            what: stages.last().map(|s| s.0.clone()).unwrap_or_default(),
            giasync: link,
            giasync_ms: ms,
            plain: None,
        });
    }
    let _ = hub
        .doc(&DocId::School {
            kind: DocKind::Roster,
            municipality: MunicipalityCode::new("4201")?,
            school: SchoolCode::new("4201000")?,
            exam: EXAM.parse()?,
        })
        .map(|d| d.length(automerge::ROOT));
    println!(
        "peak memory (VmHWM) with the hub, the РЦОИ and {hub_schools} school engines in one process: {} MiB",
        peak_rss_kib() / 1024
    );

    // 3. Side by side: plain automerge sync of the same documents at the same moments.
    let mut plain_rcoi = Docs::new();
    for (i, (_, heads)) in stages.iter().enumerate() {
        let mut plain_hub = Docs::new();
        for (id, at) in heads {
            let Some(doc) = hub.doc(id) else {
                panic!("{id} left the hub");
            };
            plain_hub.insert(*id, doc.fork_at(at)?);
        }
        let t = Instant::now();
        let plain = plain_session(&mut plain_hub, &mut plain_rcoi)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        assert_plain_holds_all(
            &plain_hub,
            &plain_rcoi,
            "plain: the hub's schools at the РЦОИ",
        );
        rows[i + 1].plain = Some((plain, ms));
    }
    println!(
        "\nside by side: giasync's engine (frames: messages, attestations, certificates) and plain \
         automerge sync (one fresh sync state per document, as automerge-repo after a reconnect; \
         bytes: messages and document ids)"
    );
    println!(
        "{:<58} {:>10} {:>4} {:>8}   {:>10} {:>4} {:>8}",
        "", "giasync B", "RTs", "ms", "plain B", "RTs", "ms"
    );
    for row in &rows {
        let Some((plain, plain_ms)) = &row.plain else {
            panic!("{}: no plain figure", row.what);
        };
        println!(
            "{:<58} {:>10} {:>4} {:>8.0}   {:>10} {:>4} {:>8.0}",
            row.what,
            row.giasync.bytes,
            row.giasync.round_trips,
            row.giasync_ms,
            plain.bytes,
            plain.round_trips,
            plain_ms
        );
    }
    Ok(())
}

/// One line of the side-by-side table.
struct Row {
    what: String,
    giasync: Link,
    giasync_ms: f64,
    plain: Option<(Link, f64)>,
}

/// The heads of every document `engine` holds.
fn heads_of(engine: &Engine) -> BTreeMap<DocId, Vec<automerge::ChangeHash>> {
    engine
        .doc_ids()
        .filter_map(|id| Some((*id, engine.doc(id)?.get_heads())))
        .collect()
}
