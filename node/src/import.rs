//! Reading participant lists from files as offices keep them: CSV (UTF-8, `;` or `,`) or XLSX
//! (the first sheet, first row the header), into rows checked by
//! [`giasync_shared::import::parse_table`]: any bad row, and nothing is imported.

use std::path::Path;

use calamine::{Data, Reader, Xlsx};
use giasync_shared::import::{ImportedRow, RowError};

/// The largest list file accepted, in bytes.
pub const IMPORT_FILE_BYTES_MAX: u64 = 64 << 20;

/// Why a list cannot be read at all (as opposed to rows that are wrong).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {size} bytes, more than {IMPORT_FILE_BYTES_MAX}")]
    TooLarge { file: String, size: u64 },
    #[error("{file}: not UTF-8 text (save the CSV as UTF-8)")]
    NotUtf8 { file: String },
    #[error("{file}: not a readable XLSX workbook: {message}")]
    Xlsx { file: String, message: String },
}

/// A spreadsheet cell as text: numbers without a fraction print as integers (document numbers
/// kept as numbers lose leading zeros in the spreadsheet itself: keep such columns as text).
fn cell(data: &Data) -> String {
    match data {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        other => other.to_string(),
    }
}

/// Reads an XLSX workbook's first sheet as a header and records.
fn xlsx_table(bytes: Vec<u8>, file: &str) -> Result<(Vec<String>, Vec<Vec<String>>), ReadError> {
    let bad = |message: String| ReadError::Xlsx {
        file: file.to_owned(),
        message,
    };
    let mut workbook: Xlsx<_> =
        Xlsx::new(std::io::Cursor::new(bytes)).map_err(|e| bad(e.to_string()))?;
    let range = workbook
        .worksheet_range_at(0)
        .ok_or_else(|| bad("the workbook has no sheet".into()))?
        .map_err(|e| bad(e.to_string()))?;
    let mut rows = range.rows().map(|r| r.iter().map(cell).collect::<Vec<_>>());
    let headers = rows.next().unwrap_or_default();
    Ok((headers, rows.collect()))
}

/// Reads and checks a participant list; the outer error when the file cannot be read, the
/// inner one with every bad row.
pub fn read_list(path: &Path) -> Result<Result<Vec<ImportedRow>, Vec<RowError>>, ReadError> {
    let file = path.display().to_string();
    let io = |source| ReadError::Io {
        file: file.clone(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > IMPORT_FILE_BYTES_MAX {
        return Err(ReadError::TooLarge { file, size });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    // An XLSX file is a zip archive.
    if bytes.starts_with(b"PK\x03\x04") {
        let (headers, records) = xlsx_table(bytes, &file)?;
        return Ok(giasync_shared::import::parse_table(
            &headers,
            records.into_iter().map(Ok),
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| ReadError::NotUtf8 { file })?;
    Ok(giasync_shared::import::parse_csv(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xlsx(rows: &[&[&str]]) -> Vec<u8> {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (r, row) in rows.iter().enumerate() {
            for (c, text) in row.iter().enumerate() {
                let (r, c) = (u32::try_from(r).unwrap(), u16::try_from(c).unwrap());
                match text.parse::<f64>() {
                    Ok(n) if !text.starts_with('0') => sheet.write_number(r, c, n),
                    _ => sheet.write_string(r, c, *text),
                }
                .unwrap();
            }
        }
        book.save_to_buffer().unwrap()
    }

    #[test]
    fn an_xlsx_list_reads_like_a_csv_one_and_a_bad_row_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let header: &[&str] = &[
            "Код МОУО",
            "Код ОО",
            "Фамилия",
            "Имя",
            "Отчество",
            "Серия",
            "Номер",
            "Класс",
            "Категория",
            "Аудитория",
        ];
        let good = xlsx(&[
            header,
            &[
                "4201",
                "420101",
                "Иванова",
                "Анна",
                "",
                "3204",
                "123456",
                "9А",
                "standard",
                "101",
            ],
            &[
                "4202",
                "420201",
                "Петров",
                "Пётр",
                "",
                "",
                "0654321",
                "9Б",
                "autism",
                "",
            ],
            &["", "", "", "", "", "", "", "", "", ""],
        ]);
        let path = dir.path().join("list.xlsx");
        std::fs::write(&path, good).unwrap();
        let rows = read_list(&path).unwrap().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].participant.document.number(), "123456");
        assert_eq!(rows[1].participant.document.number(), "0654321");
        assert_eq!(rows[1].school.map(|s| s.to_string()), Some("420201".into()));
        assert_eq!(
            rows[1].municipality.map(|m| m.to_string()),
            Some("4202".into())
        );
        let bad = xlsx(&[
            header,
            &[
                "4201",
                "420101",
                "Иванова",
                "Анна",
                "",
                "3204",
                "123456",
                "9А",
                "standard",
                "101",
            ],
            &[
                "4201",
                "420101",
                "Петров",
                "",
                "",
                "",
                "654321",
                "9Б",
                "standard",
                "",
            ],
        ]);
        std::fs::write(&path, bad).unwrap();
        let errors = read_list(&path).unwrap().unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].row, 3, "{}", errors[0]);
        std::fs::write(&path, b"PK\x03\x04 not really a zip").unwrap();
        assert!(matches!(read_list(&path), Err(ReadError::Xlsx { .. })));
    }
}
