//! The checks a node runs by itself for the readiness act (`crate::app::readiness`, seed 002
//! §26): its link to its upstream, its clock against the upstream's (measured at the last
//! connection's hello), the exam's materials package held whole, and a test recording file
//! taken in and read back (its container and duration, as a recording is checked when taken in).

use std::path::PathBuf;
use std::sync::Arc;

use giasync_shared::exam::ExamId;
use giasync_shared::readiness::AutoCheck;

use crate::app::readiness::Finding;
use crate::app::{self, Answer, Context};
use crate::doctor::CLOCK_SKEW_MS_MAX;
use crate::run::{self, NodeHandle};

/// The shortest test recording that proves anything, in milliseconds.
pub const TEST_RECORDING_MS_MIN: u64 = 1_000;

fn finding(check: AutoCheck, ok: bool, note: impl Into<String>) -> Finding {
    Finding {
        id: check.id().to_owned(),
        ok,
        note: note.into(),
    }
}

fn recording(file: Option<&PathBuf>) -> Finding {
    let Some(file) = file else {
        return finding(AutoCheck::Recording, false, "тестовая запись не указана");
    };
    let probed = std::fs::File::open(file).and_then(|mut f| {
        let len = f.metadata()?.len();
        giasync_shared::audio::probe(&mut std::io::BufReader::new(&mut f), len)
            .map_err(std::io::Error::other)
    });
    match probed {
        Ok(info) if info.duration_ms >= TEST_RECORDING_MS_MIN => finding(
            AutoCheck::Recording,
            true,
            format!(
                "{}: {}, {:.1} с",
                super::file_name(file),
                info.format,
                info.duration_ms as f64 / 1000.0
            ),
        ),
        Ok(info) => finding(
            AutoCheck::Recording,
            false,
            format!(
                "{}: {} мс, слишком коротко",
                super::file_name(file),
                info.duration_ms
            ),
        ),
        Err(e) => finding(
            AutoCheck::Recording,
            false,
            format!("{}: {e}", super::file_name(file)),
        ),
    }
}

/// The node's findings for each automatic check of `exam`'s kind, in the year's order.
pub(crate) async fn findings(
    handle: &NodeHandle,
    context: Arc<Context>,
    exam: ExamId,
    test_recording: Option<PathBuf>,
) -> crate::web::Answered {
    let Some(rules) = context.readiness.of(exam.kind()).cloned() else {
        return Ok(Err(app::Error::NoReadinessChecks { kind: exam.kind() }));
    };
    let ctx = context.clone();
    let (online, materials) = handle
        .call(move |engine, _| {
            let online = engine
                .peer_reports()
                .into_iter()
                .filter(|r| r.connected)
                .find(|r| !matches!(r.identity.org, giasync_shared::codes::OrgCode::School(_)))
                .map(|r| r.identity.to_string());
            let materials = app::materials::view(engine, &ctx)
                .into_iter()
                .find(|m| m.exam == exam);
            (online, materials)
        })
        .await
        .map_err(|_| run::CallError::Stopped)??;
    let skew = handle.clock_skew_ms.lock().ok().and_then(|s| *s);
    let mut out = Vec::new();
    for check in rules.checks.iter().filter_map(|c| c.auto) {
        out.push(match check {
            AutoCheck::Link => match &online {
                Some(peer) => finding(
                    check,
                    true,
                    format!("на связи: {}", crate::web::russian_node(peer)),
                ),
                None => finding(check, false, "нет связи с МОУО и РЦОИ"),
            },
            AutoCheck::Clock => match (online.is_some(), skew) {
                (true, Some(s)) if s.abs() <= CLOCK_SKEW_MS_MAX => {
                    finding(check, true, format!("расхождение {s:+} мс"))
                }
                (true, Some(s)) => finding(
                    check,
                    false,
                    format!(
                        "расхождение {s:+} мс: больше {} с, поправьте часы",
                        CLOCK_SKEW_MS_MAX / 1000
                    ),
                ),
                _ => finding(check, false, "не сверены: нет связи"),
            },
            AutoCheck::Materials => match &materials {
                Some(m) if m.package.is_some() => {
                    let held = m
                        .package
                        .as_ref()
                        .is_some_and(|p| handle.blob_files().held(&p.blob.hash).is_ok());
                    if held {
                        finding(check, true, "пакет получен")
                    } else {
                        finding(check, false, "пакет ещё не получен")
                    }
                }
                Some(m) => finding(
                    check,
                    false,
                    format!(
                        "пакет не подтверждён: {}",
                        m.problem.as_deref().unwrap_or("")
                    ),
                ),
                None => finding(check, false, "РЦОИ ещё не направил материалы"),
            },
            AutoCheck::Recording => {
                let file = test_recording.clone();
                tokio::task::spawn_blocking(move || recording(file.as_ref()))
                    .await
                    .map_err(|_| run::CallError::Stopped)?
            }
        });
    }
    Ok(Ok(Answer::ReadinessFindings {
        exam,
        findings: out,
    }))
}
