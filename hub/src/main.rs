//! `giasync-hub`: the МОУО and РЦОИ hub, and the operators' commands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use giasync_shared::participant::Category;
use giasync_shared::rules::{Rules, parse_points};

use giasync_node::admin::Response;
use giasync_node::app::command::{CategoryApproval, RegionRow};
use giasync_node::app::{Command as Request, Context as AppContext};
use giasync_node::export;
use giasync_node::progress::Phase;
use giasync_shared::calendar::Timestamp;
use giasync_shared::codes::{OrgCode, ParticipantId, PersonRole, SchoolCode};
use giasync_shared::config::NodeConfig;
use giasync_shared::exam::ExamId;

/// The МОУО and РЦОИ hub of giasync: runs the hub, checks its readiness, and the operators'
/// checks of scoring rules files.
#[derive(Debug, Parser)]
#[command(name = "giasync-hub", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum BundleCommand {
    /// At the РЦОИ: write its documents for one school — its signed results, receipts and
    /// register — to a folder (removable media), signed by the РЦОИ's node key, for a school on
    /// the direct route (seed 003 §2.5: state schools and colleges get their results straight
    /// from the РЦОИ); the school takes it in with `giasync-node bundle read`.
    Write {
        /// The school.
        #[arg(long)]
        school: String,
        /// The folder to write (made if missing).
        #[arg(long)]
        to: PathBuf,
        /// The РЦОИ hub's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
    },
    /// Check a school's bundle whole (the node's signature over the manifest, its certificate
    /// from this region's CA and not revoked, every file's length and hash) and only then take
    /// it in: documents judged as if the school had sent them, recordings into the store.
    Read {
        /// The bundle's folder.
        dir: PathBuf,
        /// The hub's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AudioCommand {
    /// Delete this hub's copies of an exam's recordings after the keeping period; refused
    /// before it ends.
    Destroy {
        /// The hub's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// The exam, e.g. is-2025-02-12.
        #[arg(long)]
        exam: String,
    },
}

#[derive(Debug, Subcommand)]
enum YearCommand {
    /// Check a year file (who settles conflicts, the chains of deadlines per exam kind) and print
    /// what it holds.
    Check {
        /// The year file, e.g. shared/rules/year-2024.toml.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum EssayCommand {
    /// Take in the results of итоговое сочинение (изложение) from the РЦОИ's processing (CSV in
    /// UTF-8 or Windows-1251, or XLSX: one row per participant, «зачёт»/«незачёт» per
    /// requirement and criterion). Every row is checked against the year's rules (`[node]
    /// essay`); any bad row and nothing is taken in. Then `giasync-hub publish --exam` signs
    /// each school's results, and the informing chain (seed 003) runs from here.
    Import {
        /// The results file.
        file: PathBuf,
        /// The exam, e.g. essay-2024-12-04.
        #[arg(long)]
        exam: String,
        /// The РЦОИ hub's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
    },
    /// Check a rules file of итоговое сочинение (изложение) (requirements, criteria per form,
    /// the pass rule) and print what it holds.
    Check {
        /// The rules file, e.g. shared/rules/essay-2024.toml.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum CalendarCommand {
    /// Check a production calendar file and print the years it covers.
    Check {
        /// The calendar file, e.g. shared/rules/calendar.toml.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum ReadinessCommand {
    /// Each school's readiness act for the exam: ready, not ready (which checks failed) or not
    /// reported, and overdue once the deadline has passed (seed 002 §26).
    Status {
        /// The hub's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// The exam, e.g. is-2025-02-12.
        #[arg(long)]
        exam: String,
    },
    /// Check a readiness file (the year's checks per exam kind) and print what it holds.
    Check {
        /// The readiness file, e.g. shared/rules/readiness-2024.toml.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum MaterialsCommand {
    /// Seal a file as the exam's materials (КИМ) with a new release code and name the package
    /// in the region directory: every hub and school fetches it before the day, and none can
    /// open it until this hub releases the code at 07:30 local time on the exam day.
    Add {
        /// The РЦОИ hub's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// The exam, e.g. is-2025-02-12.
        #[arg(long)]
        exam: String,
        /// The materials file, e.g. kim.zip.
        file: PathBuf,
        /// How many КИМ variants the materials hold (numbered from 1): the room log gives each
        /// participant one of them.
        #[arg(long)]
        variants: u16,
    },
    /// The exam's release code, to read out by phone or send by e-mail to a school that is
    /// offline at 07:30 (the reserve scheme); refused before the release time.
    Code {
        /// The РЦОИ hub's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// The exam, e.g. is-2025-02-12.
        #[arg(long)]
        exam: String,
    },
    /// The materials the region directory names; with --exam, which schools opened them and
    /// when.
    Status {
        /// The hub's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// The exam, e.g. is-2025-02-12.
        #[arg(long)]
        exam: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a МОУО or РЦОИ hub (by its certificate's role): accept its schools (and, at the
    /// РЦОИ, the МОУО hubs), store and forward their documents, until Ctrl-C or SIGTERM.
    Run {
        /// The hub's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
    },
    /// Check a scoring rules file and score by it.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// What the hub holds, per school: documents, participants, score sheets verified against
    /// the rules and the region's CA, conflicts; and its peers.
    Status {
        /// The hub's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
    },
    /// Exports for the federal system and offices: write an exam's results and score sheets
    /// with a signed manifest, or check a copy of one anywhere.
    #[command(subcommand)]
    Export(ExportCommand),
    /// At the РЦОИ: an exam's open conflicts, one participant a line with the conflicting sheets
    /// (hash, expert, total).
    Conflicts {
        /// The РЦОИ hub's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// The exam, e.g. is-2025-02-12 (default: this school year's first ИС date).
        #[arg(long)]
        exam: Option<String>,
    },
    /// No longer done here: conflicts are settled at the school by its commission
    /// (`giasync-node settle`, seed 002 §22, §64-67). Says so and exits non-zero; settlements an
    /// operator made before keep counting.
    Settle {
        /// The arguments the command took when the РЦОИ settled (--config, --exam, --school,
        /// --participant, --attempt, --choose, --reason, --key, --cert), accepted and ignored
        /// so that an old script is told where settling happens now.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        _old: Vec<String>,
    },
    /// At the РЦОИ: import a region-wide participant list (CSV, UTF-8, ';' or ','; or XLSX,
    /// first sheet) into each school's roster by its код ОО (and код МОУО, needed for schools
    /// the РЦОИ holds nothing of yet). Any bad row imports nothing; every bad row is named.
    Import {
        /// The РЦОИ hub's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// The exam, e.g. is-2025-02-12 (default: this school year's first ИС date).
        #[arg(long)]
        exam: Option<String>,
        /// The list: .csv or .xlsx.
        file: PathBuf,
    },
    /// At the РЦОИ: set a participant's category of record in the regional register, approving
    /// the change a school asked for (its roster shows another category; the school's own
    /// change is not used for scoring until this). The category decides the criteria and the
    /// pass mark. The operator signs the approval with their key (PIN from the terminal or
    /// GIASYNC_PIN), naming the papers it rests on (seed 002 §4: the ПМПК's recommendations, the
    /// МСЭ's certificate); the signed record is kept beside the register.
    ApproveCategory {
        /// The РЦОИ hub's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// The exam, e.g. is-2025-02-12 (default: this school year's first ИС date).
        #[arg(long)]
        exam: Option<String>,
        /// The school's код ОО.
        #[arg(long)]
        school: String,
        /// The participant's id.
        #[arg(long)]
        participant: String,
        /// The category of record from now on, e.g. standard, deaf, autism.
        #[arg(long)]
        category: String,
        /// The papers the approval rests on, e.g. "заключение ПМПК № 12 от 01.02.2024".
        #[arg(long)]
        basis: String,
        /// The operator's key file (ID.key); the certificate is ID.crt beside it unless --cert.
        #[arg(long)]
        key: PathBuf,
        /// The operator's certificate.
        #[arg(long)]
        cert: Option<PathBuf>,
    },
    /// On a hub: who must be registered for an additional date (seed 002 §70: «незачёт»,
    /// removed, finished early or absent for a valid reason), with the reason and their first
    /// attempt there, from the schools' documents of the year's earlier dates; and who waits
    /// for an absence's reason or a result. `--out` writes the admitted as a CSV that
    /// `giasync-hub import` reads back.
    Retakes {
        /// The hub's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// The additional date, e.g. is-2025-03-12.
        #[arg(long)]
        exam: String,
        /// Write the list here: XLSX when the name ends in .xlsx, else CSV (UTF-8).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Recordings held by this hub: `audio destroy` deletes the copies of an exam's recordings
    /// once the keeping period is over (seed 002 §55, §69; `[node] audio_keep_months`, at least
    /// 4) and, at the РЦОИ, records the act in its document for each school.
    #[command(subcommand)]
    Audio(AudioCommand),
    /// Readiness of the exam points: the schools' signed readiness acts against the deadline.
    #[command(subcommand)]
    Readiness(ReadinessCommand),
    /// The school year's data (`[node] year`): who settles conflicts, the deadlines of each exam
    /// kind.
    #[command(subcommand)]
    Year(YearCommand),
    /// The production calendar (`[node] calendar`) working-day deadlines count by.
    #[command(subcommand)]
    Calendar(CalendarCommand),
    /// Итоговое сочинение (изложение): its requirements and criteria as data.
    #[command(subcommand)]
    Essay(EssayCommand),
    /// The exam materials (КИМ): seal and name a package, read out its code, see who opened it.
    #[command(subcommand)]
    Materials(MaterialsCommand),
    /// Bundles from schools with no link (`giasync-node bundle write`).
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Put a school on the route its results take (seed 003 §2.3, §2.5): `municipal` (through
    /// its МОУО, the default) or `direct` (state schools and colleges: from the РЦОИ on
    /// removable media, `giasync-hub bundle write --school`). Kept in the region directory;
    /// the oversight pages judge the school's informing chain by it.
    Route {
        #[arg(long)]
        school: String,
        /// `municipal` or `direct`.
        #[arg(long)]
        route: String,
        /// The РЦОИ hub's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
    },
    /// Re-checks by another school's commission (seed 002 §71–73): the requests the reviewing
    /// schools' heads filed, and the РЦОИ's answer to one.
    #[command(subcommand)]
    Recheck(RecheckCommand),
    /// At the РЦОИ: close an exam's processing — sign each school's results (participant,
    /// total, зачёт/незачёт) with the РЦОИ key into its results document, to flow down through
    /// the МОУО hubs. Schools with open conflicts are named and left out (exit 1).
    Publish {
        /// The РЦОИ hub's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// The exam, e.g. is-2025-02-12 (default: this school year's first ИС date).
        #[arg(long)]
        exam: Option<String>,
    },
    /// The readiness check: store, certificate and key, expiry, CA and revocation list, each
    /// upstream reachable and proving its identity, clock skew. One line per check; exits
    /// non-zero if any fails.
    Doctor {
        /// The hub's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// How long to wait for each upstream, in milliseconds.
        #[arg(long, default_value_t = giasync_node::doctor::UPSTREAM_TIMEOUT_MS)]
        timeout_ms: u64,
    },
}

#[derive(Debug, Subcommand)]
enum ExportCommand {
    /// At the РЦОИ: write `results.csv`, `sheets.csv` with XLSX copies, `manifest.txt` (file hashes and row
    /// counts), `manifest.sig` (the РЦОИ node key's signature) and `signer.crt` into DIR
    /// (docs/exports.md). Works with the hub running or stopped.
    Write {
        /// The РЦОИ hub's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// The exam, e.g. is-2025-02-12 (default: this school year's first ИС date).
        #[arg(long)]
        exam: Option<String>,
        /// The folder to write (created; must not hold an export already).
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a copy of an export: the signature over the manifest and every file's size, hash
    /// and rows, no file unlisted, and that `signer.crt` is the region's РЦОИ certificate (from
    /// --ca, --crl) for the key that signed. Exits non-zero naming what failed.
    #[command(group = clap::ArgGroup::new("trust").required(true).args(["ca", "trust_any_signer"]))]
    Verify {
        dir: PathBuf,
        /// The region's CA certificate.
        #[arg(long)]
        ca: Option<PathBuf>,
        /// The region's revocation list (default: crl.pem beside the CA certificate).
        #[arg(long, requires = "ca")]
        crl: Option<PathBuf>,
        /// Check only that the files match what the manifest's own key signed, not who that is
        /// (says so loudly).
        #[arg(long)]
        trust_any_signer: bool,
    },
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Validate a rules file and print each category with its criteria, maximum and зачёт
    /// threshold; exit non-zero naming the problem when the file is wrong.
    Check {
        /// The rules file, e.g. shared/rules/is-2024.toml.
        file: PathBuf,
    },
    /// Score points for a participant category by a rules file: print the total and
    /// зачёт/незачёт; exit non-zero naming the problem for bad input.
    Score {
        /// The rules file, e.g. shared/rules/is-2024.toml.
        file: PathBuf,
        /// The participant category id, e.g. standard, deaf, autism.
        #[arg(long)]
        category: String,
        /// Points per criterion, e.g. "Ч1=1,Ч2=1,П1=2".
        #[arg(long)]
        points: String,
    },
}

fn main() -> ExitCode {
    giasync_node::init_logging();
    let cli = Cli::parse();
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the command; `Ok(false)` when it ran but found problems (a failed check).
fn run(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        Command::Rules(RulesCommand::Check { file }) => rules_check(&file).map(|()| true),
        Command::Rules(RulesCommand::Score {
            file,
            category,
            points,
        }) => rules_score(&file, &category, &points).map(|()| true),
        Command::Status { config } => {
            let (config, context) = load(&config)?;
            let response = execute(&config, &context, &Request::Status)?;
            if let Some(status) = &response.status {
                print!("{}", giasync_node::admin::format_status(status));
            }
            Ok(response.ok)
        }
        Command::Run { config } => {
            giasync_node::service::run_until_stopped(&config, true).map(|()| true)
        }
        Command::Export(ExportCommand::Write { config, exam, out }) => {
            export::write(&config, exam, &out).map(|()| true)
        }
        Command::Export(ExportCommand::Verify {
            dir,
            ca,
            crl,
            trust_any_signer: _,
        }) => {
            let trust = match &ca {
                Some(ca) => export::Trust::Region {
                    ca,
                    crl: crl.as_deref(),
                },
                None => export::Trust::AnySigner,
            };
            export::verify(&dir, trust)
        }
        Command::Conflicts { config, exam } => {
            let (config, context) = load(&config)?;
            let exam = exam_or_default(exam, &context)?;
            let response = execute(&config, &context, &Request::Conflicts { exam })?;
            for (who, heads) in &response.fields {
                println!("{who}: {heads}");
            }
            report(&response)
        }
        Command::Settle { .. } => {
            // Conflicts are settled at the school now; the arguments stay so that a script
            // written for the old command is told where settling happens instead of failing
            // to parse.
            anyhow::bail!("{}", giasync_node::app::Error::SettledAtSchool)
        }
        Command::Import { config, exam, file } => {
            let (config, context) = load(&config)?;
            let exam = exam_or_default(exam, &context)?;
            let reading = Phase::start(format!("reading {}", file.display()));
            let rows = match giasync_node::import::read_list(&file)? {
                Ok(rows) => rows,
                Err(errors) => {
                    drop(reading);
                    for e in &errors {
                        eprintln!("{}: {e}", file.display());
                    }
                    anyhow::bail!("{} bad rows: nothing was imported", errors.len());
                }
            };
            reading.finish(format!("read {} rows of {}", rows.len(), file.display()));
            let importing = Phase::start(format!("importing {} rows at the РЦОИ", rows.len()));
            let rows: Vec<RegionRow> = rows.iter().map(RegionRow::from).collect();
            let imported = execute(&config, &context, &Request::RegionImport { exam, rows })?;
            importing.finish(if imported.ok {
                "imported"
            } else {
                "not imported"
            });
            report(&imported)
        }
        Command::ApproveCategory {
            config,
            exam,
            school,
            participant,
            category,
            basis,
            key,
            cert,
        } => {
            let (config, context) = load(&config)?;
            let mut approval = CategoryApproval {
                exam: exam_or_default(exam, &context)?,
                school: SchoolCode::new(&school).context("--school")?,
                participant: ParticipantId::new(&participant).context("--participant")?,
                category: category.parse().context("--category")?,
                statement: Vec::new(),
                operator_cert: Vec::new(),
            };
            let operator = giasync_node::person::unlock(&key, cert, PersonRole::Operator)?;
            let OrgCode::Rcoi(rcoi) = operator.person.org else {
                anyhow::bail!("{} is not an operator of the РЦОИ", operator.person);
            };
            let signed = giasync_shared::approval::CategoryApproval {
                exam: approval.exam,
                school: approval.school,
                participant: approval.participant,
                category: approval.category,
                basis,
                operator: operator.person.id,
                rcoi,
                at: Timestamp::from_unix_ms(now_ms())?,
            }
            .sign(&operator.key)?;
            approval.statement = signed.as_bytes().to_vec();
            approval.operator_cert = operator.cert_der;
            report(&execute(
                &config,
                &context,
                &Request::ApproveCategory(approval),
            )?)
        }
        Command::Retakes { config, exam, out } => {
            let (config, context) = load(&config)?;
            let exam = exam.parse().context("--exam")?;
            let response = execute(&config, &context, &Request::Retakes { exam })?;
            if let (Some(out), Some(giasync_node::app::Answer::Retakes(list))) =
                (&out, &response.answer)
            {
                let xlsx = out
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("xlsx"));
                let bytes = if xlsx {
                    giasync_node::app::retakes::xlsx(list)?
                } else {
                    giasync_node::app::retakes::csv(list).into_bytes()
                };
                std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))?;
            }
            report(&response)
        }
        Command::Bundle(BundleCommand::Write { school, to, config }) => {
            let (config, context) = load(&config)?;
            let to = std::path::absolute(&to).with_context(|| format!("{}", to.display()))?;
            report(&execute(
                &config,
                &context,
                &Request::BundleWrite {
                    to,
                    documents: true,
                    school: Some(SchoolCode::new(&school).context("--school")?),
                },
            )?)
        }
        Command::Route {
            school,
            route,
            config,
        } => {
            let (config, context) = load(&config)?;
            report(&execute(
                &config,
                &context,
                &Request::SchoolRoute {
                    school: SchoolCode::new(&school).context("--school")?,
                    route: route.parse().context("--route")?,
                },
            )?)
        }
        Command::Bundle(BundleCommand::Read { dir, config }) => {
            let (config, context) = load(&config)?;
            let from = std::path::absolute(&dir).with_context(|| format!("{}", dir.display()))?;
            report(&execute(&config, &context, &Request::BundleRead { from })?)
        }
        Command::Readiness(ReadinessCommand::Status { config, exam }) => {
            let (config, context) = load(&config)?;
            let exam = exam.parse().context("--exam")?;
            report(&execute(
                &config,
                &context,
                &Request::ReadinessSchools { exam },
            )?)
        }
        Command::Readiness(ReadinessCommand::Check { file }) => {
            let rules = giasync_shared::readiness::ReadinessRules::load(&file)?;
            for e in rules.exams() {
                println!(
                    "{}: {} — {} checks ({} by the node), due {} day(s) before; {}",
                    e.kind,
                    e.title,
                    e.checks.len(),
                    e.checks.iter().filter(|c| c.auto.is_some()).count(),
                    e.days_before,
                    e.source
                );
            }
            println!("{}: readiness checks {}: ok", file.display(), rules.id);
            Ok(true)
        }
        Command::Year(YearCommand::Check { file }) => {
            let year = giasync_shared::year::YearData::load(&file)?;
            let settlers: Vec<&str> = year.settled_by.iter().map(|s| s.display_name()).collect();
            println!(
                "conflicts are settled at the school by: {}",
                settlers.join(", ")
            );
            for chain in year.chains() {
                let route = chain.route.map_or(String::new(), |r| format!(" ({r})"));
                println!("{}{route}: {}", chain.kind, chain.source);
                for step in &chain.steps {
                    let after = match step.after {
                        giasync_shared::year::Anchor::Exam => "exam".to_owned(),
                        giasync_shared::year::Anchor::Processed => "processed".to_owned(),
                        giasync_shared::year::Anchor::Step(s) => s.to_string(),
                    };
                    println!(
                        "  {}: {} {} day(s) after {after} — {}",
                        step.step, step.days, step.count, step.title
                    );
                }
            }
            println!("{}: year {}: ok", file.display(), year.id);
            Ok(true)
        }
        Command::Essay(EssayCommand::Import { file, exam, config }) => {
            let (config, context) = load(&config)?;
            let exam = exam.parse().context("--exam")?;
            let results = match giasync_node::import::read_essay_results(&file, &context.essay)? {
                Ok(rows) => rows,
                Err(errors) => {
                    for e in &errors {
                        eprintln!("{}: {e}", file.display());
                    }
                    anyhow::bail!("{} bad rows: nothing was taken in", errors.len());
                }
            };
            let rows = results
                .iter()
                .map(giasync_node::app::essay::EssayRow::from)
                .collect();
            report(&execute(
                &config,
                &context,
                &Request::EssayImport { exam, rows },
            )?)
        }
        Command::Essay(EssayCommand::Check { file }) => {
            let rules = giasync_shared::essay::EssayRules::load(&file)?;
            let requirements: Vec<&str> =
                rules.requirements.iter().map(|m| m.id.as_str()).collect();
            println!("{}: requirements {}", rules.title, requirements.join(", "));
            for form in giasync_shared::essay::EssayForm::ALL {
                if let Some(f) = rules.form(*form) {
                    let ids = |mandatory: bool| -> Vec<&str> {
                        f.criteria
                            .iter()
                            .filter(|c| c.mandatory == mandatory)
                            .map(|c| c.id.as_str())
                            .collect()
                    };
                    println!(
                        "{}: зачёт with every requirement, {} and at least {} of {} (at least {} words)",
                        f.title,
                        ids(true).join(", "),
                        f.others_min,
                        ids(false).join(", "),
                        f.words_min
                    );
                }
            }
            println!("{}: essay rules {}: ok", file.display(), rules.id);
            Ok(true)
        }
        Command::Calendar(CalendarCommand::Check { file }) => {
            let calendar = giasync_shared::workdays::ProductionCalendar::load(&file)?;
            for (year, source) in calendar.years() {
                println!("{year}: {source}");
            }
            println!("{}: calendar {}: ok", file.display(), calendar.id);
            Ok(true)
        }
        Command::Materials(MaterialsCommand::Add {
            config,
            exam,
            file,
            variants,
        }) => {
            let (config, context) = load(&config)?;
            let exam = exam.parse().context("--exam")?;
            let file = std::path::absolute(&file).with_context(|| format!("{}", file.display()))?;
            report(&execute(
                &config,
                &context,
                &Request::MaterialsAdd {
                    exam,
                    file,
                    variants,
                },
            )?)
        }
        Command::Materials(MaterialsCommand::Code { config, exam }) => {
            let (config, context) = load(&config)?;
            let exam = exam.parse().context("--exam")?;
            report(&execute(
                &config,
                &context,
                &Request::MaterialsCode { exam },
            )?)
        }
        Command::Materials(MaterialsCommand::Status { config, exam }) => {
            let (config, context) = load(&config)?;
            let request = match exam {
                Some(exam) => Request::MaterialsSchools {
                    exam: exam.parse().context("--exam")?,
                },
                None => Request::Materials,
            };
            report(&execute(&config, &context, &request)?)
        }
        Command::Audio(AudioCommand::Destroy { config, exam }) => {
            let (config, context) = load(&config)?;
            let exam = exam.parse().context("--exam")?;
            report(&execute(
                &config,
                &context,
                &Request::DestroyRecordings { exam },
            )?)
        }
        Command::Recheck(RecheckCommand::List { config }) => {
            let (config, context) = load(&config)?;
            report(&execute(&config, &context, &Request::Rechecks)?)
        }
        Command::Recheck(RecheckCommand::Grant { request, config }) => {
            let (config, context) = load(&config)?;
            let request = request
                .parse()
                .with_context(|| format!("{request:?} is not a request's hash (64 hex digits)"))?;
            report(&execute(
                &config,
                &context,
                &Request::RecheckGrant { request },
            )?)
        }
        Command::Publish { config, exam } => {
            let (config, context) = load(&config)?;
            let exam = exam_or_default(exam, &context)?;
            report(&execute(&config, &context, &Request::Publish { exam })?)
        }
        Command::Doctor { config, timeout_ms } => Ok(giasync_node::doctor::report(
            &config,
            std::time::Duration::from_millis(timeout_ms),
        )?),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
}

fn load(config: &std::path::Path) -> anyhow::Result<(NodeConfig, AppContext)> {
    let config = NodeConfig::load(config)?;
    let context = AppContext::load(&config)?;
    Ok((config, context))
}

/// The exam named, or the one of today (or next) on the region's clock.
fn exam_or_default(exam: Option<String>, context: &AppContext) -> anyhow::Result<ExamId> {
    let today = Timestamp::from_unix_ms(now_ms())?.date_at(context.clock);
    match exam {
        Some(exam) => Ok(exam.parse()?),
        None => Ok(giasync_node::app::default_exam(today)?),
    }
}

fn execute(
    config: &NodeConfig,
    context: &AppContext,
    request: &Request,
) -> anyhow::Result<Response> {
    giasync_node::admin::execute(config, context, request, now_ms())
}

/// Prints the answer; `Ok(false)` when the node refused.
fn report(response: &Response) -> anyhow::Result<bool> {
    if response.ok {
        if !response.message.is_empty() {
            println!("{}", response.message);
        }
    } else {
        eprintln!("error: {}", response.message);
    }
    Ok(response.ok)
}

fn rules_check(file: &std::path::Path) -> anyhow::Result<()> {
    let rules = Rules::load(file)?;
    println!(
        "{}: rules {} for {} ({}), {} criteria, {} categories: ok",
        file.display(),
        rules.id,
        rules.exam.display_name(),
        rules.title,
        rules.criteria().len(),
        rules.categories().count()
    );
    for c in rules.categories() {
        let criteria: Vec<String> = c
            .criteria(&rules)
            .map(|k| format!("{}({})", k.id, k.max))
            .collect();
        println!(
            "{:<20} max {:>2}  зачёт from {:>2}  {}  — {}",
            c.category.id(),
            c.max,
            c.pass_from,
            criteria.join(" "),
            c.name
        );
    }
    Ok(())
}

fn rules_score(file: &std::path::Path, category: &str, points: &str) -> anyhow::Result<()> {
    let rules = Rules::load(file)?;
    let category: Category = category.parse().context("--category")?;
    let points = parse_points(points).context("--points")?;
    let scored = rules.score(category, &points)?;
    let category_rules = rules.category(category)?;
    println!(
        "{} of {}: {} (зачёт from {})",
        scored.total,
        category_rules.max,
        scored.outcome.display_name(),
        category_rules.pass_from
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::Cli;

    #[test]
    fn export_verify_names_whom_to_trust() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(
                ["giasync-hub", "export", "verify", "dir"]
                    .iter()
                    .chain(args),
            )
        };
        // Without the CA, nothing says the signer is the РЦОИ: refused, naming both ways.
        let refused = parse(&[]).expect_err("a verify without --ca must be refused");
        let text = refused.to_string();
        assert!(
            text.contains("--ca") && text.contains("--trust-any-signer"),
            "{text}"
        );
        assert!(parse(&["--ca", "ca.crt"]).is_ok());
        assert!(parse(&["--trust-any-signer"]).is_ok());
        assert!(parse(&["--ca", "ca.crt", "--trust-any-signer"]).is_err());
    }
}

#[derive(Debug, Subcommand)]
enum RecheckCommand {
    /// The requests held here and where each stands (waiting, granted until, refused and why,
    /// closed, re-checked with its result).
    List {
        /// The hub's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
    },
    /// Grant a request: the participant's counted result of that attempt is «незачёт», it is
    /// not their first attempt, the application is in time and the РЦОИ holds the recording of
    /// their answer. The reviewing school may then read that recording and that participant's
    /// sheets, and nothing else of their school, until it signs the re-check or the term of the
    /// year's data passes. A request that does not meet this is refused, the reason written
    /// where the reviewing school sees it.
    Grant {
        /// The request's hash (`giasync-hub recheck list`).
        request: String,
        /// The РЦОИ hub's configuration (node.toml).
        #[arg(long)]
        config: PathBuf,
    },
}
