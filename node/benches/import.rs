//! A region-wide participant list at the РЦОИ, as the regional systems export it: 32,000 rows of
//! CSV in Windows-1251, `;`-separated, codes printed with dashes (`IMPORT_BENCH_ROWS`, default
//! 32,000; 34 МОУО of 18 or 19 schools).
//!
//! `cargo bench -p giasync-node --bench import` makes a demo region (the РЦОИ's real store and
//! certificates: the production path), writes the list, and times what `giasync-hub import` does
//! with the node stopped: reading the file (encoding detected, every row checked) and the
//! region import on the РЦОИ's store (each school's roster and register written, one durable
//! commit). It asserts every participant was imported. Then it imports the same list with one
//! bad row in the middle, twice (a malformed row, refused while reading; a school the РЦОИ
//! cannot place, refused by the store's command) and asserts the store file is byte-for-byte
//! what it was.

use std::path::Path;
use std::time::Instant;

use giasync_node::admin;
use giasync_node::app::command::RegionRow;
use giasync_node::app::{Answer, Command, Context};
use giasync_shared::config::NodeConfig;
use sha2::{Digest as _, Sha256};

const EXAM: &str = "is-2024-02-14";
const MUNICIPALITIES: usize = 34;
const SCHOOLS: usize = 610;

const SURNAMES: [&str; 8] = [
    "Иванова",
    "Петров",
    "Сидоренко",
    "Ёлкина",
    "Кузнецов",
    "Щербакова",
    "Гайнуллин",
    "Эргашев",
];
const NAMES: [&str; 6] = ["Анна", "Пётр", "Юлия", "Артём", "Софья", "Илья"];

/// The list's text: the header and `rows` rows; `bad` replaces row `bad.0` (1 = the header) with
/// `bad.1`.
fn list(rows: usize, bad: Option<(usize, &str)>) -> String {
    let mut text = String::from(
        "Код МОУО;Код ОО;Фамилия;Имя;Отчество;Серия документа;Номер документа;Класс;Категория\r\n",
    );
    for i in 0..rows {
        let school = i % SCHOOLS;
        let municipality = 1 + school % MUNICIPALITIES;
        let line = match bad {
            Some((row, line)) if row == i + 2 => line.to_owned(),
            _ => format!(
                "42-{municipality:02};42-{municipality:02}-{:02};{};{};Сергеевна;32 04;{:06};9{};{}",
                1 + school / MUNICIPALITIES,
                SURNAMES[i % SURNAMES.len()],
                NAMES[i % NAMES.len()],
                100_000 + i,
                ["А", "Б", "В"][i % 3],
                if i % 50 == 0 {
                    "с расстройствами аутистического спектра"
                } else {
                    "standard"
                },
            ),
        };
        text.push_str(&line);
        text.push_str("\r\n");
    }
    text
}

fn write_cp1251(path: &Path, text: &str) -> Result<(), Box<dyn std::error::Error>> {
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1251.encode(text);
    if unmappable {
        return Err("the list holds a character Windows-1251 cannot encode".into());
    }
    std::fs::write(path, bytes)?;
    Ok(())
}

/// What `giasync-hub import` does: read and check the list, then the region import on the
/// stopped РЦОИ's store. `Err` with the refusal when the list or the import is refused.
fn import(config: &NodeConfig, context: &Context, path: &Path) -> Result<Answer, String> {
    let rows = giasync_node::import::read_list(path)
        .map_err(|e| e.to_string())?
        .map_err(|errors| format!("{} bad rows, first {}", errors.len(), errors[0]))?;
    let rows = rows.iter().map(RegionRow::from).collect();
    let command = Command::RegionImport {
        exam: EXAM.parse().map_err(|e| format!("{e}"))?,
        rows,
    };
    let response = admin::execute(config, context, &command, giasync_node::run::now_ms())
        .map_err(|e| e.to_string())?;
    match response.answer {
        Some(answer) if response.ok => Ok(answer),
        _ => Err(response.message),
    }
}

fn store_hash(path: &Path) -> Result<String, std::io::Error> {
    let bytes = std::fs::read(path)?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: usize = std::env::var("IMPORT_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32_000);
    let dir = tempfile::tempdir()?;
    let options = giasync_certs::demo::DemoOptions {
        out: dir.path().join("region"),
        municipalities: 1,
        schools_per_municipality: 1,
        base_port: 48_950,
        kdf: giasync_certs::keyfile::KdfParams {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        },
        https: false,
        utc_offset: None,
    };
    giasync_certs::demo::demo(&options, time::OffsetDateTime::now_utc())?;
    let config = NodeConfig::load(&options.out.join("42").join("node.toml"))?;
    let context = Context::load(&config)?;
    let file = dir.path().join("list.csv");
    write_cp1251(&file, &list(rows, None))?;
    let bytes = std::fs::metadata(&file)?.len();

    let started = Instant::now();
    let read = giasync_node::import::read_list(&file)?
        .map_err(|e| format!("the bench's list is refused: {}", e[0]))?;
    let read_s = started.elapsed().as_secs_f64();
    if read.len() != rows {
        return Err(format!("read {} rows of {rows}", read.len()).into());
    }
    let answer = import(&config, &context, &file)?;
    let total_s = started.elapsed().as_secs_f64() - read_s;
    let Answer::RegionImported(imported) = answer else {
        return Err("not a region import".into());
    };
    if imported.participants != rows {
        return Err(format!("imported {} of {rows}", imported.participants).into());
    }
    println!(
        "import: {rows} rows, {:.1} MiB of Windows-1251 CSV into {} schools' rosters at the РЦОИ",
        bytes as f64 / f64::from(1 << 20),
        imported.schools
    );
    println!("  reading and checking the list: {read_s:.2} s");
    println!("  reading again and importing on the store (one durable commit): {total_s:.2} s");

    // One bad row in the middle, of either kind: nothing changes on disk.
    let store = &config.node.store;
    let before = store_hash(store)?;
    // A read opens the store too, and must leave it as it was.
    admin::execute(
        &config,
        &context,
        &Command::Status,
        giasync_node::run::now_ms(),
    )?;
    if store_hash(store)? != before {
        return Err("reading the store's status changed its bytes".into());
    }
    let middle = rows / 2 + 2;
    for (what, line) in [
        (
            "a malformed row",
            "42-01;42-01-01;Иванов;Иван;;3204;999999;9А;неизвестная категория",
        ),
        (
            "a school the РЦОИ cannot place",
            ";77-77-77;Иванов;Иван;;3204;999998;9А;standard",
        ),
    ] {
        let bad = dir.path().join("bad.csv");
        write_cp1251(&bad, &list(rows, Some((middle, line))))?;
        let refused = match import(&config, &context, &bad) {
            Ok(_) => return Err(format!("a list with {what} at row {middle} was imported").into()),
            Err(message) => message,
        };
        if !refused.contains(&format!("row {middle}")) {
            return Err(format!("the refusal does not name row {middle}: {refused}").into());
        }
        if store_hash(store)? != before {
            return Err(format!("a list with {what} changed the store's bytes").into());
        }
        println!(
            "  {what} at row {middle}: refused, naming it; the store is byte-for-byte as it was"
        );
    }
    Ok(())
}
