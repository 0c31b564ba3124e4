//! Participant lists as offices keep them (CSV, UTF-8 or Windows-1251, `;` or `,`): every row is
//! validated and a list with any bad row imports nothing, with an error per bad row.
//!
//! Columns are found by their header, in any order, in Russian or English, or as the regional
//! information system (РИС) and «Планирование ГИА-9» name them (`COLUMNS`): фамилия/surname,
//! имя/name, отчество/patronymic/SecondName, серия/series, номер/number, класс/class,
//! категория/category, and optionally аудитория/room, инвалидность/disabled (да/нет), письменная
//! форма/written (да/нет), код ОО/school, код МОУО/код МСУ/municipality, тип документа (by name,
//! [`DocumentType::from_name`]) and дата рождения (dd.MM.yyyy). Codes may be printed with dashes
//! or spaces («42-01-01»). The category is a contract id (`standard`, `deaf`, …) or its Russian
//! name. Spreadsheets (XLSX) are read into the same table by the node (`giasync_node::import`)
//! and checked by [`parse_table`]. A participant's id is derived from their identity document,
//! so importing the same list twice changes nothing.

use sha2::{Digest, Sha256};

use crate::codes::{MunicipalityCode, ParticipantId, RoomCode, SchoolCode};
use crate::participant::{
    Category, DocumentType, FullName, IdentityDocument, Participant, SchoolClass,
};

/// The most rows one import may hold.
pub const IMPORT_ROWS_MAX: usize = 100_000;

/// One imported row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedRow {
    /// The row in the file (1-based, the header is row 1).
    pub row: usize,
    pub participant: Participant,
    /// A disabled participant (инвалид, ребёнок-инвалид): +30 minutes whatever the category
    /// (seed 002 §14, §59).
    pub disabled: bool,
    /// Answers in writing (seed 002 §61, on the ПМПК's recommendation).
    pub written: bool,
    pub room: Option<RoomCode>,
    pub school: Option<SchoolCode>,
    /// The school's municipality (МОУО), for lists that span a region.
    pub municipality: Option<MunicipalityCode>,
    /// The kind of identity document, when the list names it (checked; the roster keeps the
    /// document's series and number, which is what the look-up needs).
    pub document_type: Option<DocumentType>,
    /// The date of birth, when the list gives it (`dd.MM.yyyy` as the regional systems print
    /// it, or `yyyy-MM-dd`; a real day of 1900-2199; checked, kept as `dd.MM.yyyy`).
    pub birth_date: Option<String>,
}

/// A row (1-based, the header is row 1) and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("row {row}: {message}")]
pub struct RowError {
    pub row: usize,
    pub message: String,
}

/// Each column's name and the headers it goes by: ours, and those of the regional information
/// system (РИС) and «Планирование ГИА-9» exports (`Surname`, `SecondName`, `DocumentSeries`, «Код
/// МСУ», …), compared in lower case.
const COLUMNS: [(&str, &[&str]); 14] = [
    ("surname", &["фамилия", "surname", "фамилия участника"]),
    (
        "name",
        &["имя", "name", "given_name", "firstname", "имя участника"],
    ),
    (
        "patronymic",
        &[
            "отчество",
            "patronymic",
            "secondname",
            "second_name",
            "middlename",
        ],
    ),
    (
        "series",
        &[
            "серия",
            "series",
            "document_series",
            "documentseries",
            "серия документа",
            "серия паспорта",
        ],
    ),
    (
        "number",
        &[
            "номер",
            "number",
            "document_number",
            "documentnumber",
            "номер документа",
            "номер паспорта",
        ],
    ),
    ("class", &["класс", "class", "classname", "класс (группа)"]),
    (
        "category",
        &["категория", "category", "категория участника"],
    ),
    ("room", &["аудитория", "room", "номер аудитории"]),
    (
        "disabled",
        &[
            "инвалидность",
            "инвалид",
            "disabled",
            "ребёнок-инвалид",
            "ребенок-инвалид",
        ],
    ),
    ("written", &["письменная форма", "письменно", "written"]),
    (
        "school",
        &[
            "код оо",
            "school",
            "school_code",
            "schoolcode",
            "оо",
            "код оу",
        ],
    ),
    (
        "municipality",
        &[
            "код моуо",
            "моуо",
            "municipality",
            "municipality_code",
            "код мсу",
            "мсу",
            "код ате",
        ],
    ),
    (
        "document_type",
        &[
            "тип документа",
            "вид документа",
            "document_type",
            "documenttype",
        ],
    ),
    (
        "birth_date",
        &["дата рождения", "birth_date", "birthday", "birthdate"],
    ),
];

/// The participant id derived from an identity document.
#[must_use]
pub fn participant_id(document: &IdentityDocument) -> ParticipantId {
    let digest = Sha256::new()
        .chain_update(document.series().as_bytes())
        .chain_update([0])
        .chain_update(document.number().as_bytes())
        .finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    ParticipantId::new(&hex).expect("16 hex digits are a valid participant id")
}

/// A yes/no cell: «да», «нет», yes, no, 1, 0, or empty for no.
fn yes_no(text: &str) -> Result<bool, String> {
    match text.trim().to_lowercase().as_str() {
        "" | "нет" | "no" | "0" | "false" | "-" => Ok(false),
        "да" | "yes" | "1" | "true" | "+" => Ok(true),
        other => Err(format!("disability: {other:?} is neither «да» nor «нет»")),
    }
}

fn category(text: &str) -> Result<Category, String> {
    let t = text.trim();
    if let Ok(c) = t.parse::<Category>() {
        return Ok(c);
    }
    let lower = t.to_lowercase();
    Category::ALL
        .iter()
        .copied()
        .find(|c| c.display_name().to_lowercase() == lower)
        .ok_or_else(|| format!("unknown category {t:?}"))
}

/// A date of birth as the regional systems print it, `dd.MM.yyyy` (`d.M.yyyy` too), or
/// `yyyy-MM-dd`: a real day of a year 1900-2199 (an adult external student may be born before
/// 2000), as `dd.MM.yyyy`.
fn birth_date(text: &str) -> Result<String, String> {
    let bad = || format!("date {text:?}: not a date dd.mm.yyyy");
    let parts: Vec<&str> = if text.contains('-') {
        text.split('-').rev().collect()
    } else {
        text.split('.').collect()
    };
    let [day, month, year] = parts[..] else {
        return Err(bad());
    };
    let number = |p: &str| -> Result<u32, String> {
        if p.is_empty() || p.len() > 4 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        p.parse().map_err(|_| bad())
    };
    let (day, month, year) = (number(day)?, number(month)?, number(year)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if !(1900..=2199).contains(&year) || day == 0 || day > days {
        return Err(bad());
    }
    Ok(format!("{day:02}.{month:02}.{year:04}"))
}

/// Parses a CSV participant list.
/// The text encoding a list file was read in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListEncoding {
    /// UTF-8, with or without a byte order mark.
    Utf8,
    /// Windows-1251, as the regional systems («Планирование ГИА-9», РИС) often export.
    Windows1251,
}

/// A list file that is neither UTF-8 nor Windows-1251 text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "row {row}: byte 0x{byte:02x} is not text in UTF-8 or Windows-1251 (save the list as CSV in either)"
)]
pub struct NotText {
    /// The row (1 is the header) of the first byte that is not text in either encoding.
    pub row: usize,
    pub byte: u8,
}

/// Decodes a CSV list: UTF-8 first (a byte order mark dropped), else Windows-1251, in which every
/// byte but 0x98 is a character; a control character other than tab, CR and LF is not text in
/// either, and the row holding the first such byte is named.
pub fn decode_list(bytes: &[u8]) -> Result<(String, ListEncoding), NotText> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let controls = |b: u8| b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n') || b == 0x7f;
    let not_text = |at: usize| NotText {
        row: 1 + bytes[..at].iter().filter(|b| **b == b'\n').count(),
        byte: bytes[at],
    };
    if let Some(at) = bytes.iter().position(|b| controls(*b)) {
        return Err(not_text(at));
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok((text.to_owned(), ListEncoding::Utf8));
    }
    // 0x98 is the one byte Windows-1251 leaves undefined.
    if let Some(at) = bytes.iter().position(|b| *b == 0x98) {
        return Err(not_text(at));
    }
    let (text, had_errors) = encoding_rs::WINDOWS_1251.decode_without_bom_handling(bytes);
    match had_errors {
        false => Ok((text.into_owned(), ListEncoding::Windows1251)),
        true => Err(not_text(0)),
    }
}

pub fn parse_csv(text: &str) -> Result<Vec<ImportedRow>, Vec<RowError>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first_line = text.lines().next().unwrap_or("");
    let delimiter = if first_line.contains(';') { b';' } else { b',' };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| {
            vec![RowError {
                row: 1,
                message: e.to_string(),
            }]
        })?
        .iter()
        .map(str::to_owned)
        .collect();
    parse_table(&headers, records_by_line(text, &mut reader))
}

/// A CSV reader's records over `text`, the `i`th for the file's line `i + 2` (the header is
/// line 1): a line the reader skips (a blank one) stands as an empty record, which the tables
/// skip in turn, so a row is named by the line an editor shows it on.
pub(crate) fn records_by_line(
    text: &str,
    reader: &mut csv::Reader<&[u8]>,
) -> Vec<Result<Vec<String>, String>> {
    // Where each line starts, to turn a record's byte offset into its line.
    let starts: Vec<u64> = std::iter::once(0)
        .chain(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i as u64 + 1),
        )
        .collect();
    let line_of = |byte: u64| starts.partition_point(|s| *s <= byte);
    let mut out: Vec<Result<Vec<String>, String>> = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                // The reader's position is where it began: before any blank lines it skipped.
                let mut at = record
                    .position()
                    .map_or(0, |p| usize::try_from(p.byte()).unwrap_or(usize::MAX));
                while let Some(rest) = text.get(at..) {
                    if rest.starts_with('\n') {
                        at += 1;
                    } else if rest.starts_with("\r\n") {
                        at += 2;
                    } else {
                        break;
                    }
                }
                let line = line_of(at as u64);
                while out.len() + 2 < line {
                    out.push(Ok(Vec::new()));
                }
                out.push(Ok(record.iter().map(str::to_owned).collect()));
            }
            Err(e) => {
                let stop = matches!(e.kind(), csv::ErrorKind::Io(_));
                out.push(Err(e.to_string()));
                if stop {
                    break;
                }
            }
        }
    }
    out
}

/// Parses a participant list given as a header row and records (as read from CSV or from a
/// spreadsheet's first sheet): each record is its cells or why it could not be read.
pub fn parse_table(
    headers: &[String],
    records: impl IntoIterator<Item = Result<Vec<String>, String>>,
) -> Result<Vec<ImportedRow>, Vec<RowError>> {
    let header_error = |message: String| vec![RowError { row: 1, message }];
    let mut index = std::collections::BTreeMap::new();
    for (i, h) in headers.iter().enumerate() {
        let h = h.trim().to_lowercase();
        if let Some((name, _)) = COLUMNS
            .iter()
            .find(|(_, aliases)| aliases.contains(&h.as_str()))
            && let Some(first) = index.insert(*name, i)
        {
            return Err(header_error(format!(
                "columns {:?} and {:?} both give the {name} column: keep one",
                headers[first].trim(),
                headers[i].trim()
            )));
        }
    }
    for required in ["surname", "name", "number", "class", "category"] {
        if !index.contains_key(required) {
            return Err(header_error(format!(
                "no {required} column (headers: {})",
                headers.join(", ")
            )));
        }
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut seen = std::collections::BTreeMap::new();
    for (i, record) in records.into_iter().enumerate() {
        let row = i + 2;
        if row > IMPORT_ROWS_MAX + 1 {
            errors.push(RowError {
                row,
                message: format!("more than {IMPORT_ROWS_MAX} rows"),
            });
            break;
        }
        let record = match record {
            Ok(r) => r,
            Err(message) => {
                errors.push(RowError { row, message });
                continue;
            }
        };
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue; // spreadsheets often end with empty rows
        }
        let field = |name: &str| {
            index
                .get(name)
                .and_then(|&i| record.get(i))
                .map_or("", |cell| cell.trim())
        };
        let parsed = (|| -> Result<ImportedRow, String> {
            let name = FullName::new(field("surname"), field("name"), field("patronymic"))
                .map_err(|e| e.to_string())?;
            let document = IdentityDocument::new(field("series"), field("number"))
                .map_err(|e| e.to_string())?;
            let class = SchoolClass::new(field("class")).map_err(|e| e.to_string())?;
            let category = category(field("category"))?;
            let disabled = yes_no(field("disabled"))?;
            let written = yes_no(field("written"))?;
            let room = match field("room") {
                "" => None,
                r => Some(RoomCode::new(r).map_err(|e| e.to_string())?),
            };
            // Codes as the regional systems print them: «42-01-01», «420 101».
            let code = |text: &str| -> String {
                text.chars()
                    .filter(|c| !matches!(c, '-' | ' ' | '\u{a0}'))
                    .collect()
            };
            let school = match code(field("school")).as_str() {
                "" => None,
                s => Some(SchoolCode::new(s).map_err(|e| e.to_string())?),
            };
            let municipality = match code(field("municipality")).as_str() {
                "" => None,
                m => Some(MunicipalityCode::new(m).map_err(|e| e.to_string())?),
            };
            let document_type = match field("document_type") {
                "" => None,
                t => Some(
                    t.parse::<DocumentType>()
                        .or_else(|_| DocumentType::from_name(t))
                        .map_err(|e| e.to_string())?,
                ),
            };
            let birth_date = match field("birth_date") {
                "" => None,
                d => Some(birth_date(d)?),
            };
            Ok(ImportedRow {
                row,
                participant: Participant {
                    id: participant_id(&document),
                    name,
                    document,
                    class,
                    category,
                },
                disabled,
                written,
                room,
                school,
                municipality,
                document_type,
                birth_date,
            })
        })();
        match parsed {
            Ok(r) => {
                if let Some(first) = seen.insert(r.participant.id, row) {
                    errors.push(RowError {
                        row,
                        message: format!("the same identity document as row {first}"),
                    });
                } else {
                    rows.push(r);
                }
            }
            Err(message) => errors.push(RowError { row, message }),
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same list saved by the regional systems in Windows-1251 and by a spreadsheet in UTF-8
    /// with a byte order mark reads to the same rows; the codes as those systems print them
    /// («42-01», «420 101») are the codes.
    #[test]
    fn a_windows_1251_list_and_a_utf8_one_read_the_same() {
        let list = "Код МОУО;Код ОО;Фамилия;Имя;Отчество;Серия;Номер;Класс;Категория\r\n\
                    42-01;420 101;Иванова;Анна;Сергеевна;3204;111111;9А;standard\r\n\
                    4201;42-01-02;Ёлкин;Пётр;;3204;222222;9Б;autism\r\n";
        let (cp1251, _, unmappable) = encoding_rs::WINDOWS_1251.encode(list);
        assert!(!unmappable);
        let mut with_bom = b"\xef\xbb\xbf".to_vec();
        with_bom.extend_from_slice(list.as_bytes());
        let (a, a_enc) = decode_list(&cp1251).unwrap();
        let (b, b_enc) = decode_list(&with_bom).unwrap();
        assert_eq!(
            (a_enc, b_enc),
            (ListEncoding::Windows1251, ListEncoding::Utf8)
        );
        assert_eq!(a, b);
        let rows = parse_csv(&a).unwrap();
        let read: Vec<(String, String, String, String)> = rows
            .iter()
            .map(|r| {
                (
                    r.municipality.map(|m| m.to_string()).unwrap_or_default(),
                    r.school.map(|s| s.to_string()).unwrap_or_default(),
                    r.participant.name.surname().to_owned(),
                    r.participant.category.id().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            read,
            vec![
                (
                    "4201".into(),
                    "420101".into(),
                    "Иванова".into(),
                    "standard".into()
                ),
                (
                    "4201".into(),
                    "420102".into(),
                    "Ёлкин".into(),
                    "autism".into()
                ),
            ]
        );
    }

    /// A list with the headers of a РИС / «Планирование ГИА-9» export (`Surname`, `SecondName`,
    /// `DocumentSeries`, «Код МСУ», «Тип документа», «Дата рождения») reads to the same
    /// participants as one with ours; document types by name, dates as dd.MM.yyyy; a bad type
    /// or date names its row.
    #[test]
    fn a_regional_systems_export_reads_like_our_own_list() {
        let ours = "Код МОУО;Код ОО;Фамилия;Имя;Отчество;Серия;Номер;Класс;Категория\r\n\
                    4201;420101;Иванова;Анна;Сергеевна;3204;111111;9А;standard\r\n";
        let theirs = "Код МСУ;Код ОО;Surname;Name;SecondName;DocumentSeries;DocumentNumber;\
                      Тип документа;Дата рождения;Класс;Категория участника\r\n\
                      42-01;42-01-01;Иванова;Анна;Сергеевна;32 04;111111;\
                      Паспорт гражданина Российской Федерации;05.03.2009;9А;standard\r\n";
        let a = parse_csv(ours).unwrap();
        let b = parse_csv(theirs).unwrap();
        assert_eq!(a[0].participant, b[0].participant);
        assert_eq!(
            (a[0].school, a[0].municipality),
            (b[0].school, b[0].municipality)
        );
        assert_eq!(b[0].document_type, Some(DocumentType::PassportRu));
        assert_eq!(b[0].birth_date.as_deref(), Some("05.03.2009"));
        // An external student born before 2000; a date in yyyy-mm-dd.
        for (cell, read) in [("07.11.1987", "07.11.1987"), ("2009-03-05", "05.03.2009")] {
            let list = theirs.replace("05.03.2009", cell);
            assert_eq!(
                parse_csv(&list).unwrap()[0].birth_date.as_deref(),
                Some(read)
            );
        }
        // Two headers for one column: refused, naming both.
        let twice = theirs
            .replace("Код МСУ", "Код МОУО;Код МСУ")
            .replace("42-01;", "4201;42-01;");
        let err = parse_csv(&twice).unwrap_err()[0].to_string();
        assert!(err.contains("\"Код МОУО\" and \"Код МСУ\""), "{err}");
        for (cell, other) in [
            ("паспорт РФ", DocumentType::PassportRu),
            ("Свидетельство о рождении", DocumentType::BirthCertificate),
            ("ВИД НА ЖИТЕЛЬСТВО", DocumentType::ResidencePermit),
            ("passport-ru", DocumentType::PassportRu),
        ] {
            let list = theirs.replace("Паспорт гражданина Российской Федерации", cell);
            assert_eq!(
                parse_csv(&list).unwrap()[0].document_type,
                Some(other),
                "{cell}"
            );
        }
        for (bad, named) in [
            (
                "Паспорт гражданина Российской Федерации;31.02.2009",
                "row 2: date \"31.02.2009\"",
            ),
            (
                "Паспорт гражданина Российской Федерации;2009.03.05",
                "row 2: date",
            ),
            (
                "Водительское удостоверение;05.03.2009",
                "row 2: invalid identity document type",
            ),
        ] {
            let list = theirs.replace("Паспорт гражданина Российской Федерации;05.03.2009", bad);
            let errors = parse_csv(&list).unwrap_err();
            assert!(errors[0].to_string().starts_with(named), "{}", errors[0]);
        }
    }

    /// A file that is text in neither encoding is refused naming the row of its first such byte.
    #[test]
    fn a_file_that_is_not_text_names_the_row() {
        let refused = decode_list(b"\xd4\xe0\xec\xe8\xeb\xe8\xff\nrow two\nrow \x00three\n");
        assert_eq!(refused, Err(NotText { row: 3, byte: 0 }));
        // The one byte Windows-1251 leaves undefined, in a file that is not UTF-8.
        assert_eq!(
            decode_list(b"\xc8\xe2\xe0\xed\n\x98\n"),
            Err(NotText { row: 2, byte: 0x98 })
        );
        assert_eq!(
            decode_list(b"\xc8\xe2\xe0\xed"),
            Ok(("Иван".to_owned(), ListEncoding::Windows1251))
        );
    }

    #[test]
    fn a_disability_column_is_read_as_yes_or_no() {
        let list = "Фамилия;Имя;Номер;Класс;Категория;Инвалидность\n\
                    Иванова;Анна;111111;9А;standard;да\n\
                    Петров;Пётр;222222;9А;standard;\n\
                    Сидоров;Иван;333333;9А;standard;нет\n";
        let rows = parse_csv(list).unwrap();
        let disabled: Vec<bool> = rows.iter().map(|r| r.disabled).collect();
        assert_eq!(disabled, vec![true, false, false]);
        let errors = parse_csv("Фамилия;Имя;Номер;Класс;Категория;Инвалидность\nИванова;Анна;111111;9А;standard;возможно\n")
            .unwrap_err();
        assert_eq!(errors[0].row, 2);
        assert!(
            errors[0].message.contains("возможно"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn a_written_form_column_is_read_as_yes_or_no() {
        let list = "Фамилия;Имя;Номер;Класс;Категория;Письменная форма\n\
                    Иванова;Анна;111111;9А;deaf;да\n\
                    Петров;Пётр;222222;9А;standard;\n";
        let rows = parse_csv(list).unwrap();
        let written: Vec<bool> = rows.iter().map(|r| r.written).collect();
        assert_eq!(written, vec![true, false]);
    }

    #[test]
    fn a_good_list_imports_with_either_delimiter() {
        let semicolon = "Фамилия;Имя;Отчество;Серия;Номер;Класс;Категория;Аудитория\nИванова;Анна;Петровна;3204;123456;9А;standard;101\nПетров;Пётр;;;654321;9Б;с задержкой психического развития;\n";
        let rows = parse_csv(semicolon).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].room.map(|r| r.to_string()), Some("101".into()));
        assert_eq!(rows[1].participant.category, Category::DelayedDevelopment);
        let comma = "surname,name,patronymic,series,number,class,category\nИванова,Анна,Петровна,3204,123456,9А,standard\n";
        let again = parse_csv(comma).unwrap();
        assert_eq!(
            again[0].participant.id, rows[0].participant.id,
            "the id follows the document"
        );
    }

    /// A blank line (the csv reader skips it) and a quoted cell over two lines: a row is named
    /// by the line an editor shows it on.
    #[test]
    fn a_bad_row_is_named_by_its_line_after_blank_lines() {
        let text = "Фамилия;Имя;Отчество;Серия;Номер;Класс;Категория\n\nИванова;Анна;;3204;123456;9А;standard\n\n\n\"Петров\nПетрович\";Пётр;;3204;222222;9Б;standard\nСидоров;Иван;;3204;777;9В;blind\n";
        let errors = parse_csv(text).unwrap_err();
        // Line 6: a surname holding a line break (refused); line 8: an unknown category.
        assert_eq!(
            errors.iter().map(|e| e.row).collect::<Vec<_>>(),
            vec![6, 8],
            "{errors:?}"
        );
    }

    #[test]
    fn one_bad_row_imports_nothing_and_is_named() {
        let text = "Фамилия;Имя;Отчество;Серия;Номер;Класс;Категория\nИванова;Анна;;3204;123456;9А;standard\nПетров;Пётр;;;;9Б;standard\nСидоров;Иван;;;777;9В;blind\nИванова;Анна;;32 04;123456;9А;standard\n";
        let errors = parse_csv(text).unwrap_err();
        assert_eq!(
            errors.iter().map(|e| e.row).collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        assert!(
            errors[0].message.contains("identity document number"),
            "{}",
            errors[0]
        );
        assert!(
            errors[1].message.contains("unknown category \"blind\""),
            "{}",
            errors[1]
        );
        assert!(
            errors[2]
                .message
                .contains("same identity document as row 2"),
            "{}",
            errors[2]
        );
        assert!(
            parse_csv("a;b\n1;2\n").unwrap_err()[0]
                .message
                .contains("no surname column")
        );
    }
}
