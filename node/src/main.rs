//! `giasync-node`: the school's node.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use giasync_node::admin::{self, Response};
use giasync_node::app::command::{Marking, RosterEntry};
use giasync_node::app::{Answer, Command as Request, Context};
use giasync_shared::calendar::Timestamp;
use giasync_shared::codes::{ParticipantId, PersonId, PersonRole, RoomCode, SchoolCode};
use giasync_shared::config::NodeConfig;
use giasync_shared::exam::ExamId;
use giasync_shared::record::{
    Attempt, Correction, RecordHash, SheetDraft, SheetSubject, SignedSheet,
};
use giasync_shared::room::{Attendance, Variant};
use giasync_shared::rules::parse_points;

/// The school's node of giasync: runs the node, checks its readiness, and takes exam-day data
/// (through the running node, or directly on its store when it does not run).
#[derive(Debug, Parser)]
#[command(name = "giasync-node", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct Target {
    /// The node's configuration (node.toml).
    #[arg(long)]
    config: PathBuf,
    /// The exam, e.g. is-2025-02-12 (default: GIASYNC_EXAM, or this school year's main ИС date).
    #[arg(long)]
    exam: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the school's node: sync its documents with its upstreams (its МОУО hub first, the
    /// РЦОИ when the hub is down) until Ctrl-C or SIGTERM.
    Run {
        /// The node's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
    },
    /// Make this node's key on this machine (at node.toml's `[tls] key`, never over an existing
    /// one) and write a certificate request for the node node.toml describes. Take the request
    /// (only it: the key stays here) to the РЦОИ (`giasync-certs sign`), then install what comes
    /// back with `install-cert`.
    Enrol {
        /// The node's configuration (node.toml): its identity and where its key goes.
        #[arg(long)]
        config: PathBuf,
        /// The organisation's code, checked against node.toml's.
        #[arg(long)]
        org: Option<String>,
        /// The DNS name or IP address the node is reached at (by default node.toml's listen
        /// address).
        #[arg(long)]
        host: Option<String>,
        /// Where to write the request (PEM).
        #[arg(long)]
        out: PathBuf,
        /// Renew: a request for the key the node has (before its certificate expires), not a
        /// new key.
        #[arg(long)]
        renew: bool,
    },
    /// Write a consistent backup of the node's store and its recordings into a new file, while
    /// the node runs (through its admin socket) or not.
    Backup {
        /// The node's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// The backup file to create.
        #[arg(long)]
        to: PathBuf,
    },
    /// Put a backup back onto this node, stopped. The backup must be this node's, and the node
    /// must hold a new key (enrol again first): see docs/operations.md, "Back up". The store it
    /// replaces is moved aside, not deleted.
    Restore {
        /// The node's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// The backup file.
        from: PathBuf,
    },
    /// A person's first sign-in at this school: make their signing key on this machine, sealed
    /// with the PIN (or passphrase) they choose now, into the people folder (ID.key), and write
    /// the request for their certificate (ID.request) under the enrolment code the РЦОИ gave
    /// them (`giasync-certs enrol-person`). The code is read from the terminal (or
    /// GIASYNC_ENROL_CODE), the PIN too (or GIASYNC_PIN). Take ID.request (only it) to the
    /// РЦОИ (`giasync-certs sign-person`), then install what comes back with `install-person`.
    EnrolPerson {
        /// The node's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// The person's role: expert, interviewer, organiser, technician or head.
        #[arg(long)]
        role: String,
        /// The person's id, as on the paper with the enrolment code.
        #[arg(long)]
        id: String,
    },
    /// Install a person's certificate the РЦОИ issued (ID.crt): checked (issued by this node's
    /// CA, not revoked, valid now, for a person of this organisation enrolled on this machine,
    /// for the key made here) before it goes into the people folder. Restart the node for its
    /// pages to offer the person at sign-in.
    InstallPerson {
        /// The node's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// The certificate file (ID.crt).
        #[arg(long)]
        from: PathBuf,
    },
    /// Install the certificate the РЦОИ issued for this node's request: node.crt, ca.crt and
    /// crl.pem from the folder `giasync-certs sign` wrote, checked (issued by that CA, not
    /// revoked, for this node's key and identity) before they go where node.toml names them.
    InstallCert {
        /// The node's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// The folder holding node.crt, ca.crt and crl.pem.
        #[arg(long)]
        from: PathBuf,
    },
    /// The readiness check for the day before the exam: store, certificate and key, expiry,
    /// CA and revocation list, each upstream reachable and proving its identity, clock skew.
    /// One line per check; exits non-zero if any fails.
    Doctor {
        /// The node's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// How long to wait for each upstream, in milliseconds.
        #[arg(long, default_value_t = giasync_node::doctor::UPSTREAM_TIMEOUT_MS)]
        timeout_ms: u64,
        /// Also the readiness checks of this exam that the running node makes (seed 002 §26):
        /// its link and clock, the materials package held, the test recording read back.
        #[arg(long)]
        exam: Option<String>,
        /// A test recording made with the recording software on this computer (with --exam).
        #[arg(long, requires = "exam")]
        recording: Option<PathBuf>,
    },
    /// The participant list: import, rooms, assignment, attendance.
    #[command(subcommand)]
    Roster(RosterCommand),
    /// Recordings of answers: take the files the recording software wrote in (seed 002 §52).
    #[command(subcommand)]
    Audio(AudioCommand),
    /// Re-check by this school's commission of another school's participant (seed 002 §71–73):
    /// the head asks the РЦОИ for the recording, then signs the commission's re-check.
    #[command(subcommand)]
    Recheck(RecheckCommand),
    /// The exam materials (КИМ): whether the package is held, the key released, and when this
    /// school opened them (opened into STORE.materials/EXAM/). The node opens them by itself
    /// when the РЦОИ releases the code at 07:30; offline, `--code` opens them with the reserve
    /// code the РЦОИ reads out by phone (a wrong code is refused and counted).
    Materials {
        /// The release code read out by the РЦОИ, e.g. K7QM-2XHP-9RTA-W4NC.
        #[arg(long)]
        code: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// The readiness act of the day before (seed 002 §26): shows what the running node checks by
    /// itself (link, clock, the materials package held, a test recording read back) and the
    /// checks the technician confirms; with --key, signs the act with the technician's key (PIN
    /// from the terminal or GIASYNC_PIN) and hands it in, to flow up to the МОУО and the РЦОИ.
    Readiness {
        /// A test recording made with the recording software on this computer.
        #[arg(long)]
        recording: Option<PathBuf>,
        /// The checks the technician confirms, by id (e.g. internet,printer); the others fail.
        #[arg(long, value_delimiter = ',')]
        confirm: Vec<String>,
        /// A note to a check: ID=TEXT (repeatable), e.g. printer="нет бумаги".
        #[arg(long)]
        note: Vec<String>,
        /// The technician's key file (ID.key); the certificate is ID.crt beside it unless --cert.
        #[arg(long)]
        key: Option<PathBuf>,
        /// The technician's certificate.
        #[arg(long)]
        cert: Option<PathBuf>,
        #[command(flatten)]
        target: Target,
    },
    /// Settle a participant's conflict for the school's commission (seed 002 §22, §64-67): the
    /// head as its chair, or an expert of the room, as the year's data allows, signs which of
    /// the conflicting sheets counts (PIN from the terminal or GIASYNC_PIN). The record names
    /// every conflicting sheet and the one chosen, and flows up to the МОУО and the РЦОИ.
    Settle {
        /// The participant whose attempt has a conflict.
        #[arg(long)]
        participant: String,
        /// The attempt (1 unless a retake).
        #[arg(long, default_value_t = 1)]
        attempt: u8,
        /// The sheet that counts: its hash or a prefix of at least 8 hex digits
        /// (`giasync-node conflicts` lists them).
        #[arg(long)]
        choose: String,
        /// Why, as the commission's protocol records it.
        #[arg(long)]
        reason: String,
        /// The signer's key file (ID.key): the head's, or a room expert's.
        #[arg(long)]
        key: PathBuf,
        /// The signer's certificate (default: ID.crt beside the key).
        #[arg(long)]
        cert: Option<PathBuf>,
        #[command(flatten)]
        target: Target,
    },
    /// The exam's open conflicts at this school: each attempt with its conflicting sheets
    /// (hash, expert, total, room).
    Conflicts {
        #[command(flatten)]
        target: Target,
    },
    /// Removable media for a school with no link: its recordings (and documents) in a signed
    /// folder that a hub checks and takes in (`giasync-hub bundle read`).
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// The results the РЦОИ published for this school (shown only once their signature
    /// verifies) and participants' familiarisation with them.
    #[command(subcommand)]
    Results(ResultsCommand),
    /// The room log: a participant's start or end time (now, unless --at).
    Log {
        /// start or end.
        which: String,
        /// The participant's id.
        participant: String,
        /// The interviewer's id (default: GIASYNC_INTERVIEWER, if set).
        #[arg(long, env = "GIASYNC_INTERVIEWER")]
        interviewer: Option<String>,
        /// The time, RFC 3339 (default: now).
        #[arg(long)]
        at: Option<String>,
        /// The КИМ variant the participant answers (with start; a same-day retake needs
        /// another one).
        #[arg(long)]
        variant: Option<u16>,
        #[command(flatten)]
        target: Target,
    },
    /// Score sheets.
    #[command(subcommand)]
    Score(ScoreCommand),
    /// What the node holds: documents, participants, score sheets verified, peers.
    Status {
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Debug, Subcommand)]
enum BundleCommand {
    /// Write the school's recordings, and with --documents its roster, protocol and results,
    /// to a folder (a flash drive), with a manifest of every file's hash signed by the node key.
    Write {
        /// The folder to write (made if missing).
        #[arg(long)]
        to: PathBuf,
        /// Also the school's documents (so the РЦОИ learns what the recordings are).
        #[arg(long)]
        documents: bool,
        /// The node's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
    },
    /// Take in a bundle the РЦОИ wrote for this school (`giasync-hub bundle write --school`):
    /// the results of a school on the direct route, on removable media. Its signature, the
    /// РЦОИ's certificate and every file are checked before anything is taken in.
    Read {
        /// The bundle's folder.
        dir: PathBuf,
        /// The node's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum RecheckCommand {
    /// The head files a participant's application: a signed request for the recording of
    /// their answer (PIN from the terminal or GIASYNC_PIN). The РЦОИ grants or refuses it.
    Request {
        /// The participant's own school.
        #[arg(long)]
        school: String,
        #[arg(long)]
        participant: String,
        /// The attempt whose «незачёт» is to be re-checked (2 at least).
        #[arg(long, default_value_t = 2)]
        attempt: u8,
        /// The day the participant filed the application here (YYYY-MM-DD).
        #[arg(long)]
        applied: String,
        /// The head's key file (ID.key).
        #[arg(long)]
        key: PathBuf,
        /// The head's certificate (default: ID.crt beside the key).
        #[arg(long)]
        cert: Option<PathBuf>,
        #[command(flatten)]
        target: Target,
    },
    /// What the РЦОИ granted this school: each recording and the original sheets' scores.
    Grants {
        #[command(flatten)]
        target: Target,
    },
    /// The head, as chair of the commission, signs its re-check from the recording: the points
    /// per criterion and the experts who listened.
    Sign {
        /// The grant (the request's hash, or a prefix of at least 8 hex digits).
        #[arg(long)]
        grant: String,
        /// The points as `К1=1,К2=0,…` (every criterion of the participant's category).
        #[arg(long)]
        points: String,
        /// An expert of this school's commission who listened (repeat for each).
        #[arg(long = "expert", required = true)]
        experts: Vec<String>,
        /// The head's key file (ID.key).
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        cert: Option<PathBuf>,
        #[command(flatten)]
        target: Target,
    },
    /// The requests this node holds and where each stands.
    List {
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Debug, Subcommand)]
enum AudioCommand {
    /// Take in a recording file: its container (WAV, MP3, OGG, MP4) and duration are checked,
    /// it is copied into the node's store under its hash and named in the protocol; hubs then
    /// fetch it up to the РЦОИ. The room and participant come from the flags, else from the
    /// file's name: DATE_ROOM_SCHOOL.EXT (a room's stream) or
    /// DATE_ROOM_SCHOOL_PARTICIPANT[_ATTEMPT].EXT (one answer).
    Add {
        /// The recording file.
        file: PathBuf,
        /// The room (default: from the file's name).
        #[arg(long)]
        room: Option<String>,
        /// Whose answer it is (default: from the file's name, if it names one).
        #[arg(long, conflicts_with = "stream")]
        participant: Option<String>,
        /// The attempt (default: from the file's name, else the one open now).
        #[arg(long)]
        attempt: Option<u8>,
        /// The room's stream for the whole day.
        #[arg(long)]
        stream: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Delete the node's copies of an exam's recordings once the keeping period is over (seed
    /// 002 §55, §69: at least 4 months after the exam; `[node] audio_keep_months`) and record
    /// the act in the protocol. Recordings the РЦОИ does not hold yet are kept. Refused before
    /// the period ends.
    Destroy {
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Debug, Subcommand)]
enum RosterCommand {
    /// Import a participant list (CSV, UTF-8, ';' or ','; or XLSX, first sheet); any bad row
    /// imports nothing.
    Import {
        /// The CSV file.
        file: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    /// Declare rooms and their capacities, e.g. "101=15,102=12".
    Rooms {
        rooms: String,
        #[command(flatten)]
        target: Target,
    },
    /// Assign a participant to a room (within its capacity).
    Assign {
        participant: String,
        room: String,
        #[command(flatten)]
        target: Target,
    },
    /// Mark attendance: present, absent («Н»), early (act of early completion) or removed (act
    /// of removal).
    Mark {
        participant: String,
        status: String,
        /// The act's number, for early and removed.
        #[arg(long, default_value = "")]
        act: String,
        #[command(flatten)]
        target: Target,
    },
    /// Record why an absent participant («Н») was absent: a valid reason names the document
    /// that confirms it (it admits them to an additional date, seed 002 §70).
    Absence {
        participant: String,
        /// The document confirming a valid reason, e.g. "справка ГБУЗ № 12 от 14.02.2024".
        #[arg(
            long,
            conflicts_with = "not_valid",
            required_unless_present = "not_valid"
        )]
        valid: Option<String>,
        /// The absence had no valid reason.
        #[arg(long)]
        not_valid: bool,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Debug, Subcommand)]
enum ResultsCommand {
    /// The published results, one participant a line, with familiarisation.
    Show {
        #[command(flatten)]
        target: Target,
    },
    /// Record that a participant has seen their result, signed with the responsible
    /// organiser's key (PIN from the terminal or GIASYNC_PIN).
    Familiarise {
        /// The participant's id.
        #[arg(long)]
        participant: String,
        /// The organiser's key file (ID.key); the certificate is ID.crt beside it unless --cert.
        #[arg(long)]
        key: PathBuf,
        /// The organiser's certificate.
        #[arg(long)]
        cert: Option<PathBuf>,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Debug, Subcommand)]
enum ScoreCommand {
    /// Score a participant and sign the sheet with the expert's key (PIN from the terminal or
    /// GIASYNC_PIN).
    Enter {
        /// The participant's id.
        #[arg(long)]
        participant: String,
        /// Points per criterion, e.g. "Ч1=1,Ч2=1,…".
        #[arg(long)]
        points: String,
        /// The expert's key file (ID.key); the certificate is ID.crt beside it unless --cert.
        #[arg(long)]
        key: PathBuf,
        /// The expert's certificate.
        #[arg(long)]
        cert: Option<PathBuf>,
        /// The attempt (1 on the main date, 2 or 3 on additional dates).
        #[arg(long, default_value_t = 1)]
        attempt: u8,
        /// Record hashes this sheet corrects (comma-separated); needs --reason.
        #[arg(long)]
        corrects: Option<String>,
        /// Why the correction.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        target: Target,
    },
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
}

fn main() -> ExitCode {
    giasync_node::init_logging();
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

struct Session {
    config: NodeConfig,
    context: Context,
    exam: ExamId,
}

fn session(target: &Target) -> anyhow::Result<Session> {
    let config = NodeConfig::load(&target.config)?;
    let context = Context::load(&config)?;
    let today = Timestamp::from_unix_ms(now_ms())?.date_at(context.clock);
    let exam = match &target.exam {
        Some(exam) => exam.parse()?,
        None => giasync_node::app::default_exam(today)?,
    };
    Ok(Session {
        config,
        context,
        exam,
    })
}

/// Runs `request` at the node configured at `config` (through its admin socket when it runs)
/// and prints the answer; a long operation, shown on a terminal as `what` while it runs.
fn execute_showing(
    config: &std::path::Path,
    request: &Request,
    what: String,
) -> anyhow::Result<bool> {
    let config = NodeConfig::load(config)?;
    let context = Context::load(&config)?;
    let phase = giasync_node::progress::Phase::start(what);
    let response = admin::execute(&config, &context, request, now_ms())?;
    // Ended before the result is printed; a spinner is left only for what succeeded.
    if response.ok {
        phase.finish("done");
    } else {
        drop(phase);
    }
    Ok(report(&response))
}

/// `path` made absolute: the running node resolves it, from its own working folder.
fn absolute(path: &std::path::Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("{}", path.display()))
}

fn send(s: &Session, request: &Request) -> anyhow::Result<Response> {
    admin::execute(&s.config, &s.context, request, now_ms())
}

fn report(response: &Response) -> bool {
    if response.ok {
        if !response.message.is_empty() {
            println!("{}", response.message);
        }
    } else {
        eprintln!("error: {}", response.message);
    }
    response.ok
}

/// The variable `enrol-person` reads the enrolment code from, instead of the terminal.
const ENROL_CODE_ENV: &str = "GIASYNC_ENROL_CODE";

fn run(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        Command::Run { config } => {
            giasync_node::service::run_until_stopped(&config, false).map(|()| true)
        }
        Command::Enrol {
            config,
            org,
            host,
            out,
            renew,
        } => {
            let config = NodeConfig::load(&config)?;
            if let Some(org) = org
                && org != config.node.code
            {
                anyhow::bail!(
                    "--org {org}, but node.toml is for {}: nothing was made",
                    config.node.code
                );
            }
            let host = match host {
                Some(host) => host,
                None if config.node.listen.ip().is_unspecified() => anyhow::bail!(
                    "node.toml listens on {}: say with --host the name or address the node is reached at",
                    config.node.listen.ip()
                ),
                None => config.node.listen.ip().to_string(),
            };
            if out.exists() {
                anyhow::bail!("{} already exists; refusing to overwrite it", out.display());
            }
            let (identity, request) = if renew {
                giasync_node::enrol::renewal(&config, &host)?
            } else {
                giasync_node::enrol::request(&config, &host)?
            };
            std::fs::write(&out, request).with_context(|| format!("writing {}", out.display()))?;
            let key = giasync_node::person::load_node_key(&config.tls.key)?;
            println!(
                "{} {} (it stays on this machine); request for {identity} at {} written to {}: take it to the РЦОИ, and read them the key fingerprint {} by phone",
                if renew { "key kept at" } else { "key made at" },
                config.tls.key.display(),
                host,
                out.display(),
                giasync_certs::enrol::fingerprint(key.verifying_key().as_bytes())
            );
            Ok(true)
        }
        Command::Backup { config, to } => execute_showing(
            &config,
            &Request::Backup { to: absolute(&to)? },
            format!("backing up into {}", to.display()),
        ),
        Command::Restore { config, from } => {
            let config = NodeConfig::load(&config)?;
            if std::os::unix::net::UnixStream::connect(admin::socket_path(&config.node.store))
                .is_ok()
            {
                anyhow::bail!("the node is running: stop it, then restore");
            }
            let material = giasync_node::transport::TlsMaterial::from_config(&config.tls)?;
            let key = giasync_node::person::load_node_key(&config.tls.key)?;
            let phase =
                giasync_node::progress::Phase::start(format!("restoring {}", from.display()));
            let restored = giasync_node::backup::restore(
                &config.node.store,
                &giasync_node::blobs::dir_beside(&config.node.store),
                (material.identity, key.verifying_key().to_bytes()),
                &from,
                now_ms(),
            )?;
            phase.finish("restored");
            println!(
                "restored {} change chunks and {} blobs into {}{}; start the node: it catches up with its hub",
                restored.changes,
                restored.blobs,
                config.node.store.display(),
                restored
                    .set_aside
                    .map(|p| format!(" (the store it replaced is at {})", p.display()))
                    .unwrap_or_default()
            );
            Ok(true)
        }
        Command::EnrolPerson { config, role, id } => {
            let path = config;
            let config = NodeConfig::load(&path)?;
            let role: giasync_shared::codes::PersonRole = role.parse().context("--role")?;
            let id = giasync_shared::codes::PersonId::new(&id).context("--id")?;
            let code = match std::env::var(ENROL_CODE_ENV) {
                Ok(code) => code,
                Err(_) => rpassword::prompt_password(format!("Enrolment code for {id}: "))
                    .with_context(|| format!("reading the code (or set {ENROL_CODE_ENV})"))?,
            };
            let prompt = if giasync_certs::keyfile::needs_passphrase(role) {
                format!(
                    "Passphrase for {id}, chosen now (at least {} characters): ",
                    giasync_certs::keyfile::PASSPHRASE_CHARS_MIN
                )
            } else {
                format!("PIN for {id}, chosen now: ")
            };
            let pin = giasync_certs::keyfile::Pin::read(&prompt, true)?;
            let people = giasync_node::enrol_person::people_dir(&config, &path);
            let identity = giasync_node::enrol_person::identity(&config, role, id)?;
            let enrolled = giasync_node::enrol_person::enrol(
                identity,
                &people,
                &code,
                &pin,
                giasync_certs::keyfile::KdfParams::DEFAULT,
            )?;
            println!(
                "made the key of {} at {} (it stays on this machine)",
                enrolled.identity,
                enrolled.key_file.display()
            );
            println!(
                "request: {} — take it to the РЦОИ (giasync-certs sign-person)",
                enrolled.request_file.display()
            );
            println!(
                "key fingerprint (read it out to the РЦОИ): {}",
                enrolled.fingerprint
            );
            Ok(true)
        }
        Command::InstallPerson { config, from } => {
            let path = config;
            let config = NodeConfig::load(&path)?;
            let people = giasync_node::enrol_person::people_dir(&config, &path);
            let identity = giasync_node::enrol_person::install(&config, &people, &from)?;
            println!(
                "installed the certificate of {identity} in {}; restart the node for its pages to offer them at sign-in",
                people.display()
            );
            Ok(true)
        }
        Command::InstallCert { config, from } => {
            let config = NodeConfig::load(&config)?;
            let identity = giasync_node::enrol::install(&config, &from)?;
            println!(
                "installed the certificate of {identity} at {}; run doctor",
                config.tls.cert.display()
            );
            Ok(true)
        }
        Command::Doctor {
            config,
            timeout_ms,
            exam,
            recording,
        } => {
            let readiness = exam
                .map(|exam| -> anyhow::Result<_> {
                    Ok(giasync_node::doctor::ReadinessCheck {
                        exam: exam.parse().context("--exam")?,
                        recording: recording.map(|r| std::path::absolute(&r)).transpose()?,
                    })
                })
                .transpose()?;
            Ok(giasync_node::doctor::report_with(
                &config,
                std::time::Duration::from_millis(timeout_ms),
                readiness.as_ref(),
            )?)
        }
        Command::Roster(command) => roster(command),
        Command::Bundle(BundleCommand::Read { dir, config }) => execute_showing(
            &config,
            &Request::BundleRead {
                from: absolute(&dir)?,
            },
            format!("reading the bundle {}", dir.display()),
        ),
        Command::Bundle(BundleCommand::Write {
            to,
            documents,
            config,
        }) => execute_showing(
            &config,
            &Request::BundleWrite {
                to: absolute(&to)?,
                documents,
                school: None,
            },
            format!("writing the bundle {}", to.display()),
        ),
        Command::Materials { code, target } => {
            let s = session(&target)?;
            let request = match code {
                Some(code) => Request::MaterialsOpen {
                    exam: s.exam,
                    code: code.parse().context("--code")?,
                },
                None => Request::Materials,
            };
            Ok(report(&send(&s, &request)?))
        }
        Command::Readiness {
            recording,
            confirm,
            note,
            key,
            cert,
            target,
        } => readiness(&target, recording, &confirm, &note, key, cert),
        Command::Settle {
            participant,
            attempt,
            choose,
            reason,
            key,
            cert,
            target,
        } => settle(
            &target,
            (&participant, attempt),
            &choose,
            reason,
            &key,
            cert,
        ),
        Command::Recheck(command) => recheck(command),
        Command::Conflicts { target } => {
            let s = session(&target)?;
            Ok(report(&send(&s, &Request::Conflicts { exam: s.exam })?))
        }
        Command::Audio(AudioCommand::Destroy { target }) => {
            let s = session(&target)?;
            Ok(report(&send(
                &s,
                &Request::DestroyRecordings { exam: s.exam },
            )?))
        }
        Command::Audio(AudioCommand::Add {
            file,
            room,
            participant,
            attempt,
            stream,
            target,
        }) => {
            let s = session(&target)?;
            // The running node reads the file from its own working directory.
            let file = std::path::absolute(&file).with_context(|| format!("{}", file.display()))?;
            Ok(report(&send(
                &s,
                &Request::AddRecording {
                    exam: s.exam,
                    file,
                    room: room.as_deref().map(RoomCode::new).transpose()?,
                    participant: participant.as_deref().map(ParticipantId::new).transpose()?,
                    attempt: attempt.map(Attempt::new).transpose()?,
                    stream,
                },
            )?))
        }
        Command::Log {
            which,
            participant,
            interviewer,
            at,
            variant,
            target,
        } => {
            let s = session(&target)?;
            let end = match which.as_str() {
                "start" => false,
                "end" => true,
                other => bail!("{other:?}: say start or end"),
            };
            let at = match at {
                Some(text) => text.parse::<Timestamp>()?,
                None => Timestamp::from_unix_ms(now_ms())?,
            };
            Ok(report(&send(
                &s,
                &Request::Log {
                    exam: s.exam,
                    participant: ParticipantId::new(&participant)?,
                    interviewer: interviewer.as_deref().map(PersonId::new).transpose()?,
                    at,
                    end,
                    variant: variant.map(Variant::new).transpose()?,
                },
            )?))
        }
        Command::Score(command) => score(command),
        Command::Results(command) => results(command),
        Command::Status { target } => {
            let s = session(&target)?;
            let response = send(&s, &Request::Status)?;
            if let Some(status) = &response.status {
                print!("{}", admin::format_status(status));
            }
            Ok(report(&response))
        }
    }
}

/// `roster import|rooms|assign|mark|absence`.
fn roster(command: RosterCommand) -> anyhow::Result<bool> {
    match command {
        RosterCommand::Import { file, target } => {
            let s = session(&target)?;
            let rows = match giasync_node::import::read_list(&file)? {
                Ok(rows) => rows,
                Err(errors) => {
                    for e in &errors {
                        eprintln!("{}: {e}", file.display());
                    }
                    bail!("{} bad rows: nothing was imported", errors.len());
                }
            };
            let own: Option<SchoolCode> = s.config.org()?.school();
            if let Some(bad) = rows.iter().find(|r| r.school.is_some() && r.school != own) {
                bail!(
                    "{} lists school {:?}, this node is {:?}: nothing was imported",
                    file.display(),
                    bad.school,
                    own
                );
            }
            let rows: Vec<RosterEntry> = rows.iter().map(RosterEntry::from).collect();
            Ok(report(&send(
                &s,
                &Request::RosterImport { exam: s.exam, rows },
            )?))
        }
        RosterCommand::Rooms { rooms, target } => {
            let s = session(&target)?;
            let rooms = rooms
                .split(',')
                .filter(|r| !r.trim().is_empty())
                .map(|r| {
                    let (code, capacity) = r.split_once('=').context("rooms are ROOM=CAPACITY")?;
                    Ok((
                        RoomCode::new(code.trim())?,
                        capacity.trim().parse::<u16>().context("capacity")?,
                    ))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok(report(&send(
                &s,
                &Request::Rooms {
                    exam: s.exam,
                    rooms,
                },
            )?))
        }
        RosterCommand::Assign {
            participant,
            room,
            target,
        } => {
            let s = session(&target)?;
            Ok(report(&send(
                &s,
                &Request::Assign {
                    exam: s.exam,
                    participant: ParticipantId::new(&participant)?,
                    room: RoomCode::new(&room)?,
                },
            )?))
        }
        RosterCommand::Mark {
            participant,
            status,
            act,
            target,
        } => {
            let s = session(&target)?;
            Ok(report(&send(
                &s,
                &Request::Mark(Marking {
                    exam: s.exam,
                    participant: ParticipantId::new(&participant)?,
                    attendance: Attendance::from_words(&status, &act)?,
                }),
            )?))
        }
        RosterCommand::Absence {
            participant,
            valid,
            not_valid: _,
            target,
        } => {
            let s = session(&target)?;
            let reason = match valid {
                Some(document) => giasync_shared::retake::AbsenceReason::valid(&document)?,
                None => giasync_shared::retake::AbsenceReason::NotValid,
            };
            Ok(report(&send(
                &s,
                &Request::Absence {
                    exam: s.exam,
                    participant: ParticipantId::new(&participant)?,
                    reason,
                },
            )?))
        }
    }
}

/// `score enter`: signs a sheet with the expert's key (PIN from the terminal) and hands it in.
fn score(command: ScoreCommand) -> anyhow::Result<bool> {
    match command {
        ScoreCommand::Enter {
            participant,
            points,
            key,
            cert,
            attempt,
            corrects,
            reason,
            target,
        } => {
            let s = session(&target)?;
            let participant = ParticipantId::new(&participant)?;
            let row = send(
                &s,
                &Request::Participant {
                    exam: s.exam,
                    participant,
                },
            )?;
            let Some(Answer::Participant(entry)) = row.answer else {
                bail!("{}", row.message);
            };
            let category = entry.category.context("the participant has no category")?;
            let room = entry.room.context("the participant has no room")?;
            let giasync_node::person::Credentials {
                person: expert,
                key: signing_key,
                cert_der,
            } = giasync_node::person::unlock(&key, cert, PersonRole::Expert)?;
            let (municipality_school, exam) =
                (s.config.org()?.school().context("not a school")?, s.exam);
            let correction = match (corrects, reason) {
                (None, None) => None,
                (Some(hashes), Some(reason)) => Some(Correction {
                    supersedes: hashes
                        .split(',')
                        .map(|h| parse_hash(h.trim()))
                        .collect::<anyhow::Result<_>>()?,
                    reason,
                }),
                _ => bail!("a correction needs both --corrects and --reason"),
            };
            let draft = SheetDraft {
                subject: SheetSubject {
                    exam,
                    school: municipality_school,
                    participant,
                    attempt: Attempt::new(attempt)?,
                },
                room,
                category,
                points: parse_points(&points)?,
                expert: PersonId::new(expert.id.as_str())?,
                signed_at: Timestamp::from_unix_ms(now_ms())?,
                correction,
            };
            let sheet = SignedSheet::sign(draft, &s.context.rules, &signing_key)?;
            Ok(report(&send(
                &s,
                &Request::Score {
                    exam: s.exam,
                    sheet: sheet.as_bytes().to_vec(),
                    expert: expert.id,
                    expert_cert: cert_der,
                },
            )?))
        }
    }
}

/// `results show|familiarise`.
fn results(command: ResultsCommand) -> anyhow::Result<bool> {
    match command {
        ResultsCommand::Show { target } => {
            let s = session(&target)?;
            let response = send(&s, &Request::Results { exam: s.exam })?;
            for (who, result) in &response.fields {
                println!("{who}: {result}");
            }
            Ok(report(&response))
        }
        ResultsCommand::Familiarise {
            participant,
            key,
            cert,
            target,
        } => {
            let s = session(&target)?;
            let organiser = giasync_node::person::unlock(&key, cert, PersonRole::Organiser)?;
            // The edition in force, as `results show` gives it: the record names it.
            let shown = send(&s, &Request::Results { exam: s.exam })?;
            if !shown.ok {
                return Ok(report(&shown));
            }
            let edition: u32 = shown
                .fields
                .get(giasync_node::admin::RESULTS_EDITION_FIELD)
                .context("the node gave no edition of the results")?
                .parse()
                .context("the edition of the results")?;
            let record = giasync_shared::publish::Familiarisation {
                exam: s.exam,
                school: s.config.org()?.school().context("not a school")?,
                participant: ParticipantId::new(&participant)?,
                organiser: organiser.person.id,
                at: Timestamp::from_unix_ms(now_ms())?,
                edition: Some(edition),
            };
            let statement = record.sign(&organiser.key)?;
            Ok(report(&send(
                &s,
                &Request::Familiarise {
                    exam: s.exam,
                    statement: statement.as_bytes().to_vec(),
                    organiser_cert: organiser.cert_der,
                },
            )?))
        }
    }
}

/// `readiness`: the node's findings and the checks; with a key, the signed act handed in.
fn readiness(
    target: &Target,
    recording: Option<PathBuf>,
    confirm: &[String],
    notes: &[String],
    key: Option<PathBuf>,
    cert: Option<PathBuf>,
) -> anyhow::Result<bool> {
    let s = session(target)?;
    let rules = s
        .context
        .readiness
        .of(s.exam.kind())
        .with_context(|| format!("the year's readiness checks have none for {}", s.exam))?
        .clone();
    let test_recording = recording
        .map(|r| std::path::absolute(&r).with_context(|| format!("{}", r.display())))
        .transpose()?;
    let found = send(
        &s,
        &Request::ReadinessFindings {
            exam: s.exam,
            test_recording,
        },
    )?;
    let Some(giasync_node::app::Answer::ReadinessFindings { findings, .. }) = &found.answer else {
        return Ok(report(&found));
    };
    let mut notes_by_id = std::collections::BTreeMap::new();
    for n in notes {
        let (id, text) = n
            .split_once('=')
            .with_context(|| format!("--note {n:?}: ID=TEXT"))?;
        notes_by_id.insert(id.to_owned(), text.to_owned());
    }
    for id in confirm.iter().chain(notes_by_id.keys()) {
        if !rules.checks.iter().any(|c| &c.id == id && c.auto.is_none()) {
            anyhow::bail!("{id}: not a check the technician confirms for {}", s.exam);
        }
    }
    let mut checks = Vec::new();
    println!("{}: {} ({})", s.exam, rules.title, rules.source);
    for c in &rules.checks {
        let outcome = match c.auto {
            Some(_) => {
                let f = findings
                    .iter()
                    .find(|f| f.id == c.id)
                    .with_context(|| format!("the node did not check {}", c.id))?;
                giasync_shared::readiness::CheckOutcome {
                    id: c.id.clone(),
                    ok: f.ok,
                    note: f.note.clone(),
                }
            }
            None => giasync_shared::readiness::CheckOutcome {
                id: c.id.clone(),
                ok: confirm.contains(&c.id),
                note: notes_by_id.get(&c.id).cloned().unwrap_or_default(),
            },
        };
        println!(
            "  {} {} — {}{}",
            if outcome.ok { "ok  " } else { "FAIL" },
            c.id,
            c.title,
            if outcome.note.is_empty() {
                String::new()
            } else {
                format!(": {}", outcome.note)
            }
        );
        checks.push(outcome);
    }
    let Some(key) = key else {
        println!("(not signed: give the technician's --key to sign the act)");
        return Ok(checks.iter().all(|c| c.ok));
    };
    let technician = giasync_node::person::unlock(&key, cert, PersonRole::Technician)?;
    let act = giasync_shared::readiness::ReadinessAct {
        exam: s.exam,
        school: s.config.org()?.school().context("not a school")?,
        technician: technician.person.id,
        at: Timestamp::from_unix_ms(now_ms())?,
        checks,
    };
    let statement = act.sign(&technician.key)?;
    Ok(report(&send(
        &s,
        &Request::Readiness {
            exam: s.exam,
            statement: statement.as_bytes().to_vec(),
            technician_cert: technician.cert_der,
        },
    )?))
}

/// `settle`: finds the conflict, picks the sheet `choose` names, signs the commission's
/// settlement with the signer's key and hands it in.
fn settle(
    target: &Target,
    (participant, attempt): (&str, u8),
    choose: &str,
    reason: String,
    key: &std::path::Path,
    cert: Option<PathBuf>,
) -> anyhow::Result<bool> {
    use giasync_shared::settlement::Settler;
    use giasync_shared::settlement::commission::CommissionSettlement;
    let s = session(target)?;
    let school = s
        .config
        .org()?
        .school()
        .context("settling is done at a school's node")?;
    let subject = SheetSubject {
        exam: s.exam,
        school,
        participant: ParticipantId::new(participant)?,
        attempt: Attempt::new(attempt)?,
    };
    let open = send(&s, &Request::Conflicts { exam: s.exam })?;
    let Some(Answer::Conflicts(conflicts)) = open.answer else {
        bail!("{}", open.message);
    };
    let heads = &conflicts
        .open
        .iter()
        .find(|c| c.subject == subject)
        .with_context(|| {
            format!(
                "{participant} (attempt {attempt}) has no open conflict in {}",
                s.exam
            )
        })?
        .heads;
    let chosen: Vec<_> = heads
        .iter()
        .filter(|h| choose.len() >= 8 && h.hash.to_string().starts_with(&choose.to_lowercase()))
        .collect();
    let [chosen] = chosen[..] else {
        bail!(
            "--choose {choose:?} must name exactly one of the conflicting sheets (8 hex digits at least): {}",
            heads
                .iter()
                .map(|h| h.hash.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let signer =
        giasync_node::person::unlock_as(key, cert, &[PersonRole::Head, PersonRole::Expert])?;
    let capacity = match signer.person.role {
        PersonRole::Head => Settler::Chair,
        _ => Settler::RoomExpert,
    };
    let settlement = CommissionSettlement {
        subject,
        room: chosen.room,
        chosen: chosen.hash,
        settles: heads.iter().map(|h| h.hash).collect(),
        reason,
        signer: signer.person.id,
        capacity,
        at: Timestamp::from_unix_ms(now_ms())?,
    };
    let statement = settlement.sign(&signer.key)?;
    Ok(report(&send(
        &s,
        &Request::CommissionSettle {
            exam: s.exam,
            statement: statement.as_bytes().to_vec(),
            cert: signer.cert_der,
        },
    )?))
}

/// `recheck`: signs with the head's key what the reviewing school files.
fn recheck(command: RecheckCommand) -> anyhow::Result<bool> {
    use giasync_shared::recheck::Request as RecheckRequest;
    use giasync_shared::recheck::verdict::{Draft, Recheck};
    match command {
        RecheckCommand::Request {
            school,
            participant,
            attempt,
            applied,
            key,
            cert,
            target,
        } => {
            let s = session(&target)?;
            let reviewer = s
                .config
                .org()?
                .school()
                .context("a re-check is requested by the reviewing school's node")?;
            let head = giasync_node::person::unlock_as(&key, cert, &[PersonRole::Head])?;
            let request = RecheckRequest {
                subject: SheetSubject {
                    exam: s.exam,
                    school: SchoolCode::new(&school)?,
                    participant: ParticipantId::new(&participant)?,
                    attempt: Attempt::new(attempt)?,
                },
                applied: applied
                    .parse()
                    .with_context(|| format!("--applied {applied:?}: a date as YYYY-MM-DD"))?,
                reviewer,
                head: head.person.id,
                at: Timestamp::from_unix_ms(now_ms())?,
            };
            let statement = request.sign(&head.key)?;
            Ok(report(&send(
                &s,
                &Request::RecheckRequest {
                    statement: statement.as_bytes().to_vec(),
                    cert: head.cert_der,
                },
            )?))
        }
        RecheckCommand::Grants { target } => {
            let s = session(&target)?;
            Ok(report(&send(&s, &Request::RecheckGrants { exam: s.exam })?))
        }
        RecheckCommand::List { target } => {
            let s = session(&target)?;
            Ok(report(&send(&s, &Request::Rechecks)?))
        }
        RecheckCommand::Sign {
            grant,
            points,
            experts,
            key,
            cert,
            target,
        } => {
            let s = session(&target)?;
            let answer = send(&s, &Request::RecheckGrants { exam: s.exam })?;
            let Some(Answer::RecheckGrants { grants }) = answer.answer else {
                bail!("{}", answer.message);
            };
            let found: Vec<_> = grants
                .iter()
                .filter(|g| {
                    grant.len() >= 8 && g.request.to_string().starts_with(&grant.to_lowercase())
                })
                .collect();
            let [found] = found[..] else {
                bail!(
                    "--grant {grant:?} must name exactly one grant of {} (8 hex digits at least): {}",
                    s.exam,
                    grants
                        .iter()
                        .map(|g| g.request.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            };
            let head = giasync_node::person::unlock_as(&key, cert, &[PersonRole::Head])?;
            let reviewer = s
                .config
                .org()?
                .school()
                .context("a re-check is signed at the reviewing school's node")?;
            let recheck = Recheck::score(
                Draft {
                    subject: found.subject,
                    reviewer,
                    grant: found.request,
                    recording: found.recording.hash,
                    category: found.category,
                    points: giasync_shared::rules::parse_points(&points)?,
                    experts: experts
                        .iter()
                        .map(|e| PersonId::new(e))
                        .collect::<Result<_, _>>()?,
                    chair: head.person.id,
                    at: Timestamp::from_unix_ms(now_ms())?,
                },
                &s.context.rules,
            )?;
            let statement = recheck.sign(&head.key)?;
            Ok(report(&send(
                &s,
                &Request::RecheckSign {
                    statement: statement.as_bytes().to_vec(),
                    cert: head.cert_der,
                },
            )?))
        }
    }
}

fn parse_hash(text: &str) -> anyhow::Result<RecordHash> {
    Ok(text.parse()?)
}
