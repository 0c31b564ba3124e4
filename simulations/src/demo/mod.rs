//! `giasync-sim demo`: a demo region on this machine, as separate processes on loopback QUIC.
//!
//! Certificates from `giasync-certs demo`; a РЦОИ hub, two МОУО hubs and four schools, each its
//! own process (this executable re-run as `giasync-sim node --config …`) with its own redb
//! store. Rosters are imported, signed scores entered while one school is offline and one МОУО hub
//! is down, both restored; the run ends when the РЦОИ holds every sheet verified, or fails.

mod essay;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use giasync_certs::demo::{DemoOptions, Region, RegionPerson, demo};
use giasync_certs::keyfile::{self, KdfParams, Pin};
use giasync_node::admin;
use giasync_node::app::command::{RosterEntry, RosterEntryWire};
use giasync_node::app::status::Status;
use giasync_node::app::{Answer, Command as Request, Context};
use giasync_shared::calendar::{Timestamp, UtcOffset};
use giasync_shared::codes::{NodeRole, ParticipantId, PersonId, PersonRole, RoomCode, SchoolCode};
use giasync_shared::config::NodeConfig;
use giasync_shared::exam::{ExamId, ExamKind};
use giasync_shared::participant::Category;
use giasync_shared::publish::Familiarisation;
use giasync_shared::record::{Attempt, RecordHash, SheetDraft, SheetSubject, SignedSheet};
use giasync_shared::room::Variant;
use giasync_shared::settlement::Settler;
use giasync_shared::settlement::commission::CommissionSettlement;

/// Participants per demo school.
pub const PARTICIPANTS_PER_SCHOOL: usize = 12;
/// How long the demo waits for the РЦОИ to hold every sheet.
pub const CONVERGENCE_TIMEOUT_S: u64 = 120;

/// What to run.
#[derive(Debug, Clone)]
pub struct DemoArgs {
    pub out: PathBuf,
    pub base_port: u16,
    pub keep: bool,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
}

struct Timeline {
    start: Instant,
}

impl Timeline {
    fn say(&self, text: &str) {
        println!("[{:>6.1} s] {text}", self.start.elapsed().as_secs_f64());
    }
}

struct Nodes {
    exe: PathBuf,
    dir: PathBuf,
    children: BTreeMap<String, Child>,
}

impl Nodes {
    fn start(&mut self, code: &str) -> anyhow::Result<()> {
        let config = self.dir.join(code).join("node.toml");
        let log = std::fs::File::create(self.dir.join(code).join("node.log"))?;
        let child = Command::new(&self.exe)
            .args(["node", "--config"])
            .arg(&config)
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting node {code}"))?;
        self.children.insert(code.to_owned(), child);
        let socket = admin::socket_path(&NodeConfig::load(&config)?.node.store);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !socket.exists() || std::os::unix::net::UnixStream::connect(&socket).is_err() {
            if Instant::now() > deadline {
                bail!(
                    "node {code} did not start; see {}",
                    self.dir.join(code).join("node.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// `kill -9`: the node gets no chance to clean up.
    fn kill(&mut self, code: &str) {
        if let Some(mut child) = self.children.remove(code) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn kill_all(&mut self) {
        let codes: Vec<String> = self.children.keys().cloned().collect();
        for code in codes {
            self.kill(&code);
        }
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        self.kill_all();
    }
}

struct SchoolData {
    code: SchoolCode,
    config: NodeConfig,
    participants: Vec<(ParticipantId, Category, RoomCode)>,
    experts: Vec<RegionPerson>,
}

/// The demo region's clock: Кузбасс's (UTC+7) when its day there has passed 07:30, when the
/// exam materials open (seed 002 §30), and is not yet late; else the first whole-hour offset
/// east of it where it has. The demo's clock is thus shifted by picking its region's time
/// zone: every node runs on the real clock and the production rules.
fn demo_clock() -> anyhow::Result<UtcOffset> {
    const FROM_MIN: i64 = 7 * 60 + 35;
    const UNTIL_MIN: i64 = 21 * 60;
    let now = now_ms();
    for hours in (7..=14).chain(-12..7) {
        let offset = UtcOffset::from_minutes(hours * 60)?;
        let minute = (now + i64::from(offset.minutes()) * 60_000).rem_euclid(86_400_000) / 60_000;
        if (FROM_MIN..UNTIL_MIN).contains(&minute) {
            return Ok(offset);
        }
    }
    bail!("no time zone has passed 07:35 and not 21:00 now")
}

/// A test recording as the recording software would leave it: 1.5 s of silence, WAV (8 kHz,
/// 8-bit, mono).
fn test_recording(path: &Path) -> anyhow::Result<()> {
    const RATE: u32 = 8_000;
    let samples = RATE * 3 / 2;
    let mut wav = Vec::with_capacity(44 + samples as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + samples).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&RATE.to_le_bytes());
    wav.extend_from_slice(&RATE.to_le_bytes()); // bytes a second
    wav.extend_from_slice(&1u16.to_le_bytes()); // block align
    wav.extend_from_slice(&8u16.to_le_bytes()); // bits a sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&samples.to_le_bytes());
    wav.resize(44 + samples as usize, 0x80);
    std::fs::write(path, wav)?;
    Ok(())
}

/// Each school's technician signs the readiness act (seed 002 §26): the node's own checks (link,
/// clock, the materials package held, a test recording read back) and their word for the
/// internet and the printer. Prints what the РЦОИ sees; `Ok(false)` unless every school is ready.
fn sign_readiness(
    timeline: &Timeline,
    region: &Region,
    rcoi: &NodeConfig,
    context: &Context,
    schools: &[SchoolData],
    exam: ExamId,
    region_dir: &Path,
) -> anyhow::Result<bool> {
    let recording = region_dir.join("test-recording.wav");
    test_recording(&recording)?;
    let rules = context
        .readiness
        .of(exam.kind())
        .context("no readiness checks for the exam")?
        .clone();
    for school in schools {
        let technician = region
            .people
            .iter()
            .find(|p| p.org == school.code.as_str() && p.role == PersonRole::Technician)
            .context("the school has no technician")?;
        let found = admin::execute(
            &school.config,
            context,
            &Request::ReadinessFindings {
                exam,
                test_recording: Some(recording.clone()),
            },
            now_ms(),
        )?;
        let Some(Answer::ReadinessFindings { findings, .. }) = found.answer else {
            bail!("school {}: {}", school.code, found.message);
        };
        let checks = rules
            .checks
            .iter()
            .map(|c| {
                let found = findings.iter().find(|f| f.id == c.id);
                giasync_shared::readiness::CheckOutcome {
                    id: c.id.clone(),
                    ok: found.is_none_or(|f| f.ok),
                    note: found.map(|f| f.note.clone()).unwrap_or_default(),
                }
            })
            .collect();
        let (key, cert) = credentials(region_dir, technician)?;
        let act = giasync_shared::readiness::ReadinessAct {
            exam,
            school: school.code,
            technician: PersonId::new(technician.id.as_str())?,
            at: Timestamp::from_unix_ms(now_ms())?,
            checks,
        };
        let signed = admin::execute(
            &school.config,
            context,
            &Request::Readiness {
                exam,
                statement: act.sign(&key)?.as_bytes().to_vec(),
                technician_cert: cert,
            },
            now_ms(),
        )?;
        if !signed.ok {
            bail!("school {}: {}", school.code, signed.message);
        }
    }
    let mut ready = 0;
    for _ in 0..300 {
        let view = admin::execute(rcoi, context, &Request::ReadinessSchools { exam }, now_ms())?;
        if let Some(Answer::Readiness(v)) = view.answer {
            ready = v.schools.iter().filter(|s| s.standing == "ready").count();
            if ready == schools.len() {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    timeline.say(&format!(
        "readiness acts signed by each school's technician (link, clock, materials, a test recording, internet, printer): {ready} of {} schools ready at the РЦОИ",
        schools.len()
    ));
    Ok(ready == schools.len())
}

/// The РЦОИ seals the day's materials (КИМ) and names the package; at 07:30 of the region's day
/// (already passed: [`demo_clock`]) it releases the code and every school's node opens its copy
/// by itself. Prints when each school opened them; `Ok(false)` if one did not within a minute.
fn open_materials(
    timeline: &Timeline,
    rcoi: &NodeConfig,
    context: &Context,
    schools: &[SchoolData],
    exam: ExamId,
    out: &Path,
) -> anyhow::Result<bool> {
    let file = out.join(format!("kim-{exam}.txt"));
    std::fs::write(
        &file,
        "КИМ итогового собеседования (демонстрация). Вариант 1: задание 1 — чтение текста вслух; …\n",
    )?;
    let added = admin::execute(
        rcoi,
        context,
        &Request::MaterialsAdd {
            exam,
            file,
            variants: 4,
        },
        now_ms(),
    )?;
    if !added.ok {
        bail!("the materials: {}", added.message);
    }
    timeline.say(&format!("РЦОИ: {}", added.message));
    let mut all = true;
    for school in schools {
        let mut opened = None;
        for _ in 0..600 {
            let view = admin::execute(&school.config, context, &Request::Materials, now_ms())?;
            if let Some(Answer::Materials { exams }) = view.answer
                && let Some(m) = exams
                    .into_iter()
                    .find(|m| m.exam == exam && m.opened.is_some())
            {
                opened = m.opened.map(|at| (at, m.opened_by));
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        match opened {
            Some((at, by)) => timeline.say(&format!(
                "school {}: materials opened at {} local time ({})",
                school.code,
                at.at_offset(context.clock),
                if by.as_deref() == Some("code") {
                    "reserve code"
                } else {
                    "the РЦОИ's release"
                }
            )),
            None => {
                all = false;
                timeline.say(&format!("school {}: materials NOT opened", school.code));
            }
        }
    }
    Ok(all)
}

/// The demo rehearses exam day today, in the region's calendar: the РЦОИ accepts only sheets
/// signed on their exam's day, and judges that against its own clock (`ingest::Refusal`).
fn exam(clock: UtcOffset) -> anyhow::Result<ExamId> {
    let today = Timestamp::from_unix_ms(now_ms())?.date_at(clock);
    Ok(ExamId::new(ExamKind::Is, today))
}

const CATEGORIES: [Category; 4] = [
    Category::Standard,
    Category::Standard,
    Category::Autism,
    Category::DelayedDevelopment,
];

fn roster_rows(school: usize) -> anyhow::Result<Vec<RosterEntry>> {
    (0..PARTICIPANTS_PER_SCHOOL)
        .map(|i| RosterEntryWire {
            id: format!("{school:02}{i:04}"),
            surname: ["Иванова", "Петров", "Смирнова", "Кузнецов"][i % 4].into(),
            name: ["Анна", "Иван", "Мария", "Пётр"][i % 4].into(),
            patronymic: "Сергеевна".into(),
            series: "3204".into(),
            number: format!("{school:02}{i:04}"),
            class: "9А".into(),
            category: CATEGORIES[i % 4].id().into(),
            // One disabled participant of the standard category per school: +30 minutes.
            disabled: i == 4,
            written: false,
            room: Some(if i % 2 == 0 { "101" } else { "102" }.into()),
        })
        .map(|w| Ok(RosterEntry::try_from(w)?))
        .collect()
}

/// Points for a category: everything at maximum but the first criteria, reduced by `seed`.
fn points(
    context: &Context,
    category: Category,
    seed: usize,
) -> anyhow::Result<Vec<(giasync_shared::rules::CriterionId, i64)>> {
    let rules = context.rules.category(category)?;
    Ok(rules
        .criteria(&context.rules)
        .enumerate()
        .map(|(i, c)| (c.id, if i < seed % 4 { 0 } else { i64::from(c.max) }))
        .collect())
}

/// The demo room log's first answer: 09:00 on the region's clock.
const ROOM_LOG_FROM_MS: i64 = 9 * 3_600_000;
/// One participant's answer in the demo (seed 002: about 15 minutes).
const ANSWER_MS: i64 = 15 * 60_000;
/// From one participant's start to the next one's in a room.
const ANSWER_SLOT_MS: i64 = 16 * 60_000;

/// The participant of the first school whose first recording is bad: the organiser writes an act
/// of early completion and they sit again the same day as attempt 2 (seed 002 §45).
const RETAKE_INDEX: usize = 1;

/// The attempt the demo scores participant `index` of school `n` on: 2 for the same-day retake.
fn attempt_of(n: usize, index: usize) -> u8 {
    if n == 0 && index == RETAKE_INDEX {
        2
    } else {
        1
    }
}

/// The organiser of `school` ends participant `index`'s attempt 1 with a signed act for a bad
/// recording (seed 002 §45, appendix 3), as the organiser's page would.
fn write_bad_recording_act(
    context: &Context,
    region: &Region,
    school: &SchoolData,
    exam: ExamId,
    index: usize,
    region_dir: &Path,
) -> anyhow::Result<()> {
    use giasync_shared::act::{Act, ActKind, EarlyReason};
    let (participant, _, room) = school.participants[index];
    let organiser = region
        .people
        .iter()
        .find(|p| p.org == school.code.as_str() && p.role == PersonRole::Organiser)
        .context("the school has no organiser")?;
    let (key, cert) = credentials(region_dir, organiser)?;
    let act = Act {
        exam,
        school: school.code,
        participant,
        attempt: Attempt::new(1)?,
        room,
        kind: ActKind::Early(EarlyReason::BadRecording),
        text: String::new(),
        number: giasync_shared::room::ActNumber::new("1")?,
        organiser: PersonId::new(organiser.id.as_str())?,
        at: Timestamp::from_unix_ms(now_ms())?,
    };
    let request = Request::Act {
        exam,
        statement: act.sign(&key)?.as_bytes().to_vec(),
        organiser_cert: cert,
    };
    let response = admin::execute(&school.config, context, &request, now_ms())?;
    if !response.ok {
        bail!("school {}: {}", school.code, response.message);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn enter_score(
    context: &Context,
    school: &SchoolData,
    exam: ExamId,
    (index, attempt): (usize, u8),
    expert_index: usize,
    seed: usize,
    region_dir: &Path,
) -> anyhow::Result<RecordHash> {
    let (participant, category, room) = school.participants[index];
    let expert = &school.experts[expert_index % school.experts.len()];
    let (key, cert) = credentials(region_dir, expert)?;
    let draft = SheetDraft {
        subject: SheetSubject {
            exam,
            school: school.code,
            participant,
            attempt: Attempt::new(attempt)?,
        },
        room,
        category,
        points: points(context, category, seed)?,
        expert: PersonId::new(expert.id.as_str())?,
        signed_at: Timestamp::from_unix_ms(now_ms())?,
        correction: None,
    };
    let sheet = SignedSheet::sign(draft, &context.rules, &key)?;
    // The interviewer's room log on the exam's day (the demo's exam is today): the
    // participants of a room answer one after another from 09:00, 16 minutes each (a second sheet
    // for the same participant leaves the log as it is).
    if expert_index == index {
        let start_ms = exam.date().day_window_ms(context.clock).start
            + ROOM_LOG_FROM_MS
            + i64::try_from(index / 2)? * ANSWER_SLOT_MS;
        for (at_ms, end) in [(start_ms, false), (start_ms + ANSWER_MS, true)] {
            let log = Request::Log {
                exam,
                participant,
                interviewer: None,
                at: Timestamp::from_unix_ms(at_ms)?,
                end,
                variant: if end { None } else { Some(Variant::new(1)?) },
            };
            let response = admin::execute(&school.config, context, &log, now_ms())?;
            if !response.ok {
                bail!("school {}: {}", school.code, response.message);
            }
        }
    }
    let request = Request::Score {
        exam,
        sheet: sheet.as_bytes().to_vec(),
        expert: expert.id,
        expert_cert: cert,
    };
    let response = admin::execute(&school.config, context, &request, now_ms())?;
    if !response.ok {
        bail!("school {}: {}", school.code, response.message);
    }
    Ok(sheet.hash())
}

/// The sheets each school sees receipted `verified` by the РЦОИ (the receipts travel down).
fn verified_at_rcoi(
    schools: &[SchoolData],
    context: &Context,
    exam: ExamId,
) -> anyhow::Result<BTreeSet<RecordHash>> {
    let mut verified = BTreeSet::new();
    for school in schools {
        let request = Request::SchoolDay { exam: Some(exam) };
        let day = admin::execute(&school.config, context, &request, now_ms())?
            .school_day
            .context("no school day")?;
        verified.extend(
            day.participants
                .iter()
                .flat_map(|p| &p.sheets)
                .filter(|s| s.at_rcoi == giasync_node::app::day::Receipt::Verified)
                .map(|s| s.hash),
        );
    }
    Ok(verified)
}

/// A demo person's unlocked key (with the PIN the demo wrote down) and certificate (DER).
fn credentials(
    region_dir: &Path,
    person: &RegionPerson,
) -> anyhow::Result<(ed25519_dalek::SigningKey, Vec<u8>)> {
    let key_file = std::fs::read(region_dir.join(&person.key))?;
    let key = keyfile::open(&key_file, &Pin::new(person.pin.clone())?)?;
    let cert_pem = std::fs::read(region_dir.join(&person.cert))?;
    let cert = giasync_certs::show::certs_from_pem(&cert_pem)?
        .into_iter()
        .next()
        .context("no certificate")?;
    Ok((key, cert))
}

/// Each school's commission settles its conflicts (seed 002 §22, §64-67): the head of the
/// school, as its chair, signs that the first sheet counts, at the school's node.
fn settle_conflicts(
    region: &Region,
    region_dir: &Path,
    schools: &[SchoolData],
    context: &Context,
    exam: ExamId,
) -> anyhow::Result<usize> {
    let mut settled = 0;
    for school in schools {
        let open = admin::execute(
            &school.config,
            context,
            &Request::Conflicts { exam },
            now_ms(),
        )?;
        let Some(Answer::Conflicts(conflicts)) = open.answer else {
            bail!("conflicts at {}: {}", school.code, open.message);
        };
        if conflicts.open.is_empty() {
            continue;
        }
        let head = region
            .people
            .iter()
            .find(|p| p.role == PersonRole::Head && p.org == school.code.to_string())
            .context("the demo school has no head")?;
        let (key, cert) = credentials(region_dir, head)?;
        for conflict in conflicts.open {
            let who = conflict.subject;
            let first = conflict
                .heads
                .first()
                .context("a conflict without sheets")?;
            let settlement = CommissionSettlement {
                subject: conflict.subject,
                room: first.room,
                chosen: first.hash,
                settles: conflict.heads.iter().map(|h| h.hash).collect(),
                reason: "запись ответа прослушана комиссией, засчитан первый бланк".into(),
                signer: head.id,
                capacity: Settler::Chair,
                at: Timestamp::from_unix_ms(now_ms())?,
            };
            let statement = settlement.sign(&key)?;
            let response = admin::execute(
                &school.config,
                context,
                &Request::CommissionSettle {
                    exam,
                    statement: statement.as_bytes().to_vec(),
                    cert: cert.clone(),
                },
                now_ms(),
            )?;
            if !response.ok {
                bail!("settling {who}: {}", response.message);
            }
            settled += 1;
        }
    }
    Ok(settled)
}

/// Waits until the РЦОИ sees no open conflict in `exam` (the schools' settlements arrived), at
/// most until `deadline`; the number still open.
fn conflicts_cleared_at_rcoi(
    rcoi: &NodeConfig,
    context: &Context,
    exam: ExamId,
    deadline: Instant,
) -> anyhow::Result<usize> {
    loop {
        let open = admin::execute(rcoi, context, &Request::Conflicts { exam }, now_ms())?;
        let Some(Answer::Conflicts(conflicts)) = open.answer else {
            bail!("conflicts at the РЦОИ: {}", open.message);
        };
        if conflicts.open.is_empty() || Instant::now() >= deadline {
            return Ok(conflicts.open.len());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Each school's organiser signs that its first participant has seen their result; returns how
/// many schools showed verified results.
fn familiarise_first(
    region: &Region,
    region_dir: &Path,
    schools: &[SchoolData],
    context: &Context,
    exam: ExamId,
) -> anyhow::Result<usize> {
    let mut done = 0;
    for school in schools {
        let results = admin::execute(
            &school.config,
            context,
            &Request::Results { exam },
            now_ms(),
        )?;
        if !results.ok {
            continue;
        }
        let organiser = region
            .people
            .iter()
            .find(|p| p.role == PersonRole::Organiser && p.org == school.code.to_string())
            .context("the demo school has no organiser")?;
        let (key, cert) = credentials(region_dir, organiser)?;
        let edition: u32 = results
            .fields
            .get(admin::RESULTS_EDITION_FIELD)
            .context("the results give no edition")?
            .parse()?;
        let record = Familiarisation {
            exam,
            school: school.code,
            participant: school.participants[0].0,
            organiser: organiser.id,
            at: Timestamp::from_unix_ms(now_ms())?,
            edition: Some(edition),
        };
        let response = admin::execute(
            &school.config,
            context,
            &Request::Familiarise {
                exam,
                statement: record.sign(&key)?.as_bytes().to_vec(),
                organiser_cert: cert,
            },
            now_ms(),
        )?;
        if !response.ok {
            bail!("school {}: {}", school.code, response.message);
        }
        done += 1;
    }
    Ok(done)
}

fn rcoi_status(config: &NodeConfig, context: &Context) -> anyhow::Result<Status> {
    admin::execute(config, context, &Request::Status, now_ms())?
        .status
        .context("no status")
}

/// The РЦОИ's metrics address: the port after the look-up's, which follows the nodes'.
fn metrics_addr(base_port: u16, nodes: usize) -> anyhow::Result<std::net::SocketAddr> {
    let port = u16::try_from(nodes + 1)
        .ok()
        .and_then(|n| base_port.checked_add(n))
        .context("no port left for the РЦОИ's metrics")?;
    Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
}

/// The sheets the РЦОИ's metrics count verified and invalid, over all schools: one scrape of
/// `GET /metrics`, read as Prometheus would read the text.
fn scrape_sheets(addr: std::net::SocketAddr) -> anyhow::Result<(usize, usize)> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let (mut verified, mut invalid) = (0, 0);
    for line in text.lines().filter(|l| l.starts_with("giasync_sheets{")) {
        let Some((labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value: usize = value.parse().context("a giasync_sheets sample")?;
        if labels.contains("state=\"verified\"") {
            verified += value;
        } else if labels.contains("state=\"invalid\"") {
            invalid += value;
        }
    }
    Ok((verified, invalid))
}

/// Runs the demo; `Ok(true)` when every sheet reached the РЦОИ verified.
pub fn run(args: &DemoArgs) -> anyhow::Result<bool> {
    let stopper = args.keep.then(Stopper::catch).transpose()?;
    let timeline = Timeline {
        start: Instant::now(),
    };
    if args.out.exists() {
        std::fs::remove_dir_all(&args.out)
            .with_context(|| format!("clearing {}", args.out.display()))?;
    }
    let clock = demo_clock()?;
    let region: Region = demo(
        &DemoOptions {
            out: args.out.clone(),
            municipalities: 2,
            schools_per_municipality: 2,
            base_port: args.base_port,
            kdf: KdfParams::DEFAULT,
            https: false,
            utc_offset: Some(clock),
        },
        time::OffsetDateTime::now_utc(),
    )?;
    timeline.say(&format!(
        "certificates for region {}: {} nodes, {} people in {}",
        region.region,
        region.nodes.len(),
        region.people.len(),
        args.out.display()
    ));
    let rcoi_config = NodeConfig::load(&args.out.join(region.region.as_str()).join("node.toml"))?;
    let context = Context::load(&rcoi_config)?;
    let exam = exam(context.clock)?;

    let mut schools: Vec<SchoolData> = Vec::new();
    // The РЦОИ's region-wide list of the same participants: the register, which gives each
    // their category of record (a sheet by another category is refused on receipt).
    let mut listed: Vec<giasync_node::app::command::RegionRow> = Vec::new();
    for (n, node) in region
        .nodes
        .iter()
        .filter(|n| n.role == NodeRole::School)
        .enumerate()
    {
        let config = NodeConfig::load(&args.out.join(&node.dir).join("node.toml"))?;
        let rows = roster_rows(n + 1)?;
        let municipality = node
            .parent
            .as_deref()
            .map(giasync_shared::codes::MunicipalityCode::new)
            .transpose()?;
        let first_row = listed.len() + 2;
        listed.extend(rows.iter().enumerate().map(|(i, r)| {
            giasync_node::app::command::RegionRow {
                row: first_row + i,
                school: SchoolCode::new(&node.code).ok(),
                municipality,
                participant: r.clone(),
            }
        }));
        let rooms = Request::Rooms {
            exam,
            rooms: vec![(RoomCode::new("101")?, 15), (RoomCode::new("102")?, 15)],
        };
        admin::execute(&config, &context, &rooms, now_ms())?;
        let response = admin::execute(
            &config,
            &context,
            &Request::RosterImport {
                exam,
                rows: rows.clone(),
            },
            now_ms(),
        )?;
        if !response.ok {
            bail!("school {}: {}", node.code, response.message);
        }
        let participants = rows
            .iter()
            .map(|r| {
                Ok((
                    r.participant.id,
                    r.participant.category,
                    r.room.map_or_else(|| RoomCode::new("101"), Ok)?,
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let experts = region
            .people
            .iter()
            .filter(|p| p.org == node.code && p.role == giasync_shared::codes::PersonRole::Expert)
            .cloned()
            .collect();
        schools.push(SchoolData {
            code: SchoolCode::new(&node.code)?,
            config,
            participants,
            experts,
        });
    }
    let response = admin::execute(
        &rcoi_config,
        &context,
        &Request::RegionImport { exam, rows: listed },
        now_ms(),
    )?;
    if !response.ok {
        bail!("the РЦОИ's list: {}", response.message);
    }
    timeline.say(&format!(
        "rosters imported: {} schools × {PARTICIPANTS_PER_SCHOOL} participants for {exam}, and the РЦОИ's register of them",
        schools.len()
    ));

    // The РЦОИ serves its metrics on the port after the look-up's, for a scrape below as
    // Prometheus would.
    let metrics = metrics_addr(args.base_port, region.nodes.len())?;
    let rcoi_toml = args.out.join(region.region.as_str()).join("node.toml");
    let text = std::fs::read_to_string(&rcoi_toml)?;
    std::fs::write(
        &rcoi_toml,
        text.replacen("[node]\n", &format!("[node]\nmetrics = \"{metrics}\"\n"), 1),
    )?;
    let mut nodes = Nodes {
        exe: std::env::current_exe()?,
        dir: args.out.clone(),
        children: BTreeMap::new(),
    };
    for node in &region.nodes {
        nodes.start(&node.dir)?;
    }
    timeline.say("РЦОИ, 2 МОУО hubs and 4 schools running as separate processes on loopback QUIC");
    let materials_opened =
        open_materials(&timeline, &rcoi_config, &context, &schools, exam, &args.out)?;
    let readiness_ok = sign_readiness(
        &timeline,
        &region,
        &rcoi_config,
        &context,
        &schools,
        exam,
        &args.out,
    )?;

    let mut entered = 0usize;
    let mut entered_sheets = BTreeSet::new();
    let half = PARTICIPANTS_PER_SCHOOL / 2;
    if let Some(first) = schools.first() {
        write_bad_recording_act(&context, &region, first, exam, RETAKE_INDEX, &args.out)?;
        timeline.say(&format!(
            "school {}: act № 1 ends participant {}'s attempt 1 (bad recording); they sit again today as attempt 2",
            first.code, first.participants[RETAKE_INDEX].0
        ));
    }
    for (n, school) in schools.iter().enumerate() {
        for i in 0..half {
            let subject = (i, attempt_of(n, i));
            entered_sheets.insert(enter_score(
                &context, school, exam, subject, i, i, &args.out,
            )?);
            entered += 1;
        }
    }
    timeline.say(&format!(
        "{entered} signed sheets entered while everything is up"
    ));

    // School 420102 loses its link (its process stops; staff keep entering on the node's
    // store) and the МОУО 4202 hub goes down.
    let offline_school = schools
        .get(1)
        .map(|s| s.code.to_string())
        .unwrap_or_default();
    nodes.kill(&offline_school);
    nodes.kill("4202");
    timeline.say(&format!(
        "school {offline_school} offline, МОУО hub 4202 down (kill -9)"
    ));
    for (n, school) in schools.iter().enumerate() {
        for i in half..PARTICIPANTS_PER_SCHOOL {
            let subject = (i, attempt_of(n, i));
            entered_sheets.insert(enter_score(
                &context, school, exam, subject, i, i, &args.out,
            )?);
            entered += 1;
        }
    }
    // Two experts score one participant differently: a conflict the РЦОИ must surface.
    if let Some(school) = schools.first() {
        let subject = (0, attempt_of(0, 0));
        entered_sheets.insert(enter_score(
            &context, school, exam, subject, 1, 3, &args.out,
        )?);
        entered += 1;
    }
    timeline.say(&format!(
        "{entered} sheets entered in all, one of them a conflicting second sheet"
    ));
    nodes.start(&offline_school)?;
    nodes.start("4202")?;
    timeline.say(&format!(
        "school {offline_school} back online, МОУО hub 4202 restarted"
    ));

    let deadline = Instant::now() + Duration::from_secs(CONVERGENCE_TIMEOUT_S);
    let mut status = rcoi_status(&rcoi_config, &context)?;
    loop {
        let verified: usize = status.schools.iter().map(|s| s.sheets_verified).sum();
        if verified >= entered || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
        status = rcoi_status(&rcoi_config, &context)?;
    }
    let verified: usize = status.schools.iter().map(|s| s.sheets_verified).sum();
    let invalid: usize = status.schools.iter().map(|s| s.sheets_invalid).sum();
    let conflicts: usize = status.schools.iter().map(|s| s.conflicts).sum();
    for s in &status.schools {
        timeline.say(&format!(
            "РЦОИ holds school {}: {} participants, {} sheets verified, {} conflicts",
            s.school, s.participants, s.sheets_verified, s.conflicts
        ));
    }
    // The РЦОИ's receipts travel back down: each school sees which of its sheets the РЦОИ holds.
    let receipted = |schools: &[SchoolData]| -> anyhow::Result<usize> {
        let mut total = 0;
        for school in schools {
            let status = admin::execute(&school.config, &context, &Request::Status, now_ms())?
                .status
                .context("no status")?;
            total += status
                .schools
                .iter()
                .map(|s| s.sheets_at_rcoi)
                .sum::<usize>();
        }
        Ok(total)
    };
    let mut back = receipted(&schools)?;
    while back < verified && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        back = receipted(&schools)?;
    }
    timeline.say(&format!(
        "receipts back at the schools: {back} of {verified} sheets are known to be safe at the РЦОИ"
    ));
    let scraped = scrape_sheets(metrics)?;
    timeline.say(&format!(
        "РЦОИ metrics (http://{metrics}/metrics): {} sheets verified, {} invalid",
        scraped.0, scraped.1
    ));
    // The school's commission settles the conflict with a record its chair signs; it flows up;
    // the РЦОИ closes processing and publishes each school's results, signed; they flow down,
    // each school verifies the signature, its organiser signs each participant's
    // familiarisation, which flows back up.
    let settled = settle_conflicts(&region, &args.out, &schools, &context, exam)?;
    let still_open = conflicts_cleared_at_rcoi(
        &rcoi_config,
        &context,
        exam,
        Instant::now() + Duration::from_secs(30),
    )?;
    if still_open > 0 {
        bail!("{still_open} conflicts the schools settled are still open at the РЦОИ after 30 s");
    }
    timeline.say(&format!(
        "{settled} conflict settled at the school by the commission chair's signed record; the РЦОИ sees none open"
    ));
    let published = admin::execute(&rcoi_config, &context, &Request::Publish { exam }, now_ms())?;
    timeline.say(&published.message);
    let mut familiarised_schools = 0;
    while familiarised_schools < schools.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        familiarised_schools = familiarise_first(&region, &args.out, &schools, &context, exam)?;
    }
    let acks_at_rcoi =
        |status: &Status| -> usize { status.schools.iter().map(|s| s.familiarised).sum() };
    let mut status_after = rcoi_status(&rcoi_config, &context)?;
    while acks_at_rcoi(&status_after) < schools.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        status_after = rcoi_status(&rcoi_config, &context)?;
    }
    let acks = acks_at_rcoi(&status_after);
    let conflicts_open: usize = status_after.schools.iter().map(|s| s.conflicts).sum();
    timeline.say(&format!(
        "results verified at {familiarised_schools} of {} schools; familiarisation records back at the РЦОИ: {acks}",
        schools.len()
    ));
    // The РЦОИ exports the exam (results and sheets, signed manifest); a copy is checked as an
    // office would check it, against the region's CA.
    let export_dir = args.out.join("export");
    giasync_node::export::write(
        &args.out.join(region.region.as_str()).join("node.toml"),
        Some(exam.to_string()),
        &export_dir,
    )?;
    let exported = giasync_node::export::verify(
        &export_dir,
        giasync_node::export::Trust::Region {
            ca: &rcoi_config.tls.ca,
            crl: Some(&rcoi_config.tls.crl),
        },
    )?;
    timeline.say(&format!(
        "export written to {} and {}",
        export_dir.display(),
        if exported { "verified" } else { "NOT verified" }
    ));
    // Итоговое сочинение (изложение): the РЦОИ's processing, then seed 003's chain.
    let essay = essay::run(
        &timeline,
        (&rcoi_config, &context),
        &schools,
        &args.out,
        clock,
    )?;
    // Lost: a sheet entered that no school sees receipted `verified` (by hash, not by count:
    // one sheet verified twice must not hide another never seen).
    let receipted_sheets = verified_at_rcoi(&schools, &context, exam)?;
    let lost = entered_sheets.difference(&receipted_sheets).count();
    println!(
        "signed sheets entered: {entered}, verified at the РЦОИ: {verified}, invalid: {invalid}, conflicts surfaced: {conflicts}, lost: {lost}"
    );
    let ok = lost == 0
        && materials_opened
        && readiness_ok
        && entered_sheets.len() == entered
        && invalid == 0
        && conflicts == 1
        && settled == 1
        && conflicts_open == 0
        && published.ok
        && familiarised_schools == schools.len()
        && acks == schools.len()
        && status.quarantined == 0
        && back == verified
        && scraped == (verified, invalid)
        && exported
        && essay.imported == 2 * schools.len()
        && essay.verified == schools.len()
        && essay.delivered == schools.len();
    if args.keep {
        println!("the region keeps running (Ctrl-C or SIGTERM stops it and its nodes):");
        for node in &region.nodes {
            let web = if node.role == NodeRole::School {
                format!(", web interface http://{}/", node.addr)
            } else {
                format!(
                    ", oversight http://{}/ (sign in: see region.json)",
                    node.addr
                )
            };
            println!(
                "  {} {} at {}{web} — {}",
                node.role,
                node.code,
                node.addr,
                args.out.join(&node.dir).join("node.toml").display()
            );
        }
        for person in &region.people {
            println!(
                "  {} {} ({}), {}: PIN {}",
                person.role, person.id, person.name, person.org, person.pin
            );
        }
        let signal = stopper.map_or("stopped", Stopper::wait);
        println!("{signal}: stopping the region's nodes");
    }
    nodes.kill_all();
    Ok(ok)
}

/// SIGTERM, SIGINT and SIGHUP, caught from the start of a `--keep` run (so a stop at any
/// moment still reaches [`Stopper::wait`] and the nodes are stopped with the demo: a service
/// manager sends SIGTERM to this process alone, which the nodes would otherwise outlive).
struct Stopper {
    runtime: tokio::runtime::Runtime,
    signals: [tokio::signal::unix::Signal; 3],
}

impl Stopper {
    fn catch() -> anyhow::Result<Stopper> {
        use tokio::signal::unix::{SignalKind, signal};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let signals = runtime.block_on(async {
            Ok::<_, std::io::Error>([
                signal(SignalKind::terminate())?,
                signal(SignalKind::interrupt())?,
                signal(SignalKind::hangup())?,
            ])
        })?;
        Ok(Stopper { runtime, signals })
    }

    /// Waits for one of the signals and names it.
    fn wait(self) -> &'static str {
        let Stopper {
            runtime,
            signals: [mut term, mut interrupt, mut hangup],
        } = self;
        runtime.block_on(async {
            tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
                _ = hangup.recv() => "SIGHUP",
            }
        })
    }
}
