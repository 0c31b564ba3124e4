//! The demo's итоговое сочинение (изложение) chain (seed 003): the РЦОИ puts one school on the
//! direct route, takes in its processing's results from a Windows-1251 file as a processing
//! system writes it (read by the same code `giasync-hub essay import` uses), publishes them;
//! they reach the schools on the municipal route through their МОУО, and the direct-route
//! school from a bundle the РЦОИ writes for it (removable media); each school verifies them;
//! the РЦОИ's oversight shows each school's chain step by step.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use giasync_node::admin;
use giasync_node::app::{Answer, Command as Request, Context};
use giasync_shared::calendar::UtcOffset;
use giasync_shared::config::NodeConfig;
use giasync_shared::exam::{ExamId, ExamKind};
use giasync_shared::oversight::DeadlineState;
use giasync_shared::year::Route;

use super::{SchoolData, Timeline, now_ms};

const HEADER: &str = "Код ОО;Фамилия;Имя;Отчество;Серия;Номер;Форма;Т1;Т2;К1;К2;К3;К4;К5;Результат";

/// What the chain came to.
pub(super) struct EssayChain {
    pub imported: usize,
    /// Schools where the published results verified.
    pub verified: usize,
    /// Schools whose results-to-school step the РЦОИ sees done.
    pub delivered: usize,
}

/// Two graduates per school: one сочинение with «зачёт», one изложение with «незачёт» (К2,
/// mandatory, failed).
fn file_text(schools: &[SchoolData]) -> String {
    let mut text = format!("{HEADER}\r\n");
    for (n, school) in schools.iter().enumerate() {
        text.push_str(&format!(
            "{};Ёлкина;Дарья;Юрьевна;4604;{:06};сочинение;зачёт;зачёт;зачёт;зачёт;зачёт;незачёт;зачёт;зачёт\r\n",
            school.code,
            600_000 + n * 10 + 1
        ));
        text.push_str(&format!(
            "{};Щукин;Илья;;4604;{:06};изложение;зачёт;зачёт;зачёт;незачёт;зачёт;зачёт;зачёт;незачёт\r\n",
            school.code,
            600_000 + n * 10 + 2
        ));
    }
    text
}

fn ask(
    config: &NodeConfig,
    context: &Context,
    request: &Request,
) -> anyhow::Result<admin::Response> {
    admin::execute(config, context, request, now_ms())
}

pub(super) fn run(
    timeline: &Timeline,
    (rcoi_config, context): (&NodeConfig, &Context),
    schools: &[SchoolData],
    out: &std::path::Path,
    clock: UtcOffset,
) -> anyhow::Result<EssayChain> {
    let today = giasync_shared::calendar::Timestamp::from_unix_ms(now_ms())?.date_at(clock);
    let exam = ExamId::new(ExamKind::Essay, today);
    let direct = schools.last().context("no school")?;
    let routed = ask(
        rcoi_config,
        context,
        &Request::SchoolRoute {
            school: direct.code,
            route: Route::Direct,
        },
    )?;
    if !routed.ok {
        bail!("routing {}: {}", direct.code, routed.message);
    }
    // The processing system's file, in Windows-1251 as such systems often write.
    let text = file_text(schools);
    let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(&text);
    let file = out.join(format!("{exam}-results.csv"));
    std::fs::write(&file, &bytes).with_context(|| file.display().to_string())?;
    let rows = match giasync_node::import::read_essay_results(&file, &context.essay)? {
        Ok(rows) => rows,
        Err(errors) => bail!("the demo's essay file: {errors:?}"),
    };
    let imported = ask(
        rcoi_config,
        context,
        &Request::EssayImport {
            exam,
            rows: rows
                .iter()
                .map(giasync_node::app::essay::EssayRow::from)
                .collect(),
        },
    )?;
    if !imported.ok {
        bail!("essay import: {}", imported.message);
    }
    timeline.say(&imported.message);
    let published = ask(rcoi_config, context, &Request::Publish { exam })?;
    if !published.ok {
        bail!("essay publication: {}", published.message);
    }
    timeline.say(&format!(
        "{exam}: published; school {} is on the direct route",
        direct.code
    ));
    // The direct-route school: the РЦОИ's bundle for it, carried on removable media.
    let media = std::path::absolute(out.join(format!("flash-{}", direct.code)))?;
    let written = ask(
        rcoi_config,
        context,
        &Request::BundleWrite {
            to: media.clone(),
            documents: true,
            school: Some(direct.code),
        },
    )?;
    if !written.ok {
        bail!("the РЦОИ's bundle for {}: {}", direct.code, written.message);
    }
    let read = ask(
        &direct.config,
        context,
        &Request::BundleRead { from: media },
    )?;
    if !read.ok {
        bail!(
            "school {} reading the РЦОИ's bundle: {}",
            direct.code,
            read.message
        );
    }
    timeline.say(&format!(
        "school {}: the РЦОИ's bundle read from removable media",
        direct.code
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut verified = 0;
    while Instant::now() < deadline {
        verified = 0;
        for school in schools {
            let results = ask(&school.config, context, &Request::Results { exam })?;
            if matches!(results.answer, Some(Answer::Results(r)) if r.rows.len() == 2) {
                verified += 1;
            }
        }
        if verified == schools.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let mut delivered = 0;
    let mut lines = Vec::new();
    while Instant::now() < deadline {
        let oversight = ask(rcoi_config, context, &Request::Oversight)?
            .oversight
            .context("no oversight")?;
        let chain = |school: &SchoolData| -> Vec<(String, DeadlineState)> {
            oversight
                .deadlines
                .iter()
                .filter(|d| d.exam == exam && d.school == school.code.as_str())
                .map(|d| (d.step.clone(), d.state))
                .collect()
        };
        delivered = schools
            .iter()
            .filter(|s| {
                chain(s).iter().any(|(step, state)| {
                    step == "results_to_school" && *state == DeadlineState::Done
                })
            })
            .count();
        lines = schools
            .iter()
            .map(|s| {
                let steps: Vec<String> = chain(s)
                    .iter()
                    .map(|(step, state)| format!("{step} {state:?}"))
                    .collect();
                format!("  school {}: {}", s.code, steps.join(", "))
            })
            .collect();
        if delivered == schools.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    timeline.say(&format!(
        "{exam}: results verified at {verified} of {} schools; the РЦОИ's chain (seed 003):\n{}",
        schools.len(),
        lines.join("\n")
    ));
    Ok(EssayChain {
        imported: rows.len(),
        verified,
        delivered,
    })
}
