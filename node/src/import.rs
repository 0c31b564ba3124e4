//! Reading participant lists from files as offices keep them: CSV (UTF-8, `;` or `,`) or XLSX
//! (the first sheet, first row the header), into rows checked by
//! [`giasync_shared::import::parse_table`]: any bad row, and nothing is imported.

use std::path::Path;

use calamine::{Data, Reader, Xlsx};
use giasync_shared::import::{ImportedRow, RowError};

/// The largest list file accepted, in bytes.
pub const IMPORT_FILE_BYTES_MAX: u64 = 64 << 20;
/// The most bytes an XLSX workbook's parts may declare once decompressed (a zip bomb is a
/// small file that declares, or hides, far more).
pub const IMPORT_XLSX_UNCOMPRESSED_BYTES_MAX: u64 = 256 << 20;
/// The most sheet rows read: the header, the rows a list may have
/// ([`giasync_shared::import::IMPORT_ROWS_MAX`]) and one more, so an over-long list is refused
/// by the table's own rule, naming the row.
const XLSX_ROWS_MAX: u32 = giasync_shared::import::IMPORT_ROWS_MAX as u32 + 2;
/// The most columns a list may use.
pub const IMPORT_COLUMNS_MAX: u32 = 64;

/// The bounds an XLSX workbook is read within.
#[derive(Debug, Clone, Copy)]
struct XlsxBounds {
    uncompressed_bytes: u64,
    rows: u32,
    columns: u32,
}

const XLSX_BOUNDS: XlsxBounds = XlsxBounds {
    uncompressed_bytes: IMPORT_XLSX_UNCOMPRESSED_BYTES_MAX,
    rows: XLSX_ROWS_MAX,
    columns: IMPORT_COLUMNS_MAX,
};

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
    #[error("{file}: {source}")]
    NotText {
        file: String,
        source: giasync_shared::import::NotText,
    },
    #[error("{file}: not a readable XLSX workbook: {message}")]
    Xlsx { file: String, message: String },
    #[error("{file}: the workbook declares {declared} bytes once decompressed, more than {max}")]
    XlsxTooLarge {
        file: String,
        declared: u64,
        max: u64,
    },
    #[error("{file}: part {part} decompresses to more than the {declared} bytes it declares")]
    XlsxPartLies {
        file: String,
        part: String,
        declared: u64,
    },
    #[error(
        "{file}: a cell at row {row}, column {column} is beyond the {max_rows} rows and {max_columns} columns a list may use"
    )]
    XlsxCellOutOfBounds {
        file: String,
        row: u32,
        column: u32,
        max_rows: u32,
        max_columns: u32,
    },
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

/// Reads an XLSX workbook's first sheet as a header and records, within `bounds`: the parts'
/// declared decompressed sizes are summed from the central directory before anything is
/// decompressed, and cells are read one by one (never as one dense range from A1 to the
/// farthest cell), each refused beyond the rows and columns a list may use.
fn xlsx_table(
    bytes: Vec<u8>,
    file: &str,
    bounds: XlsxBounds,
) -> Result<(Vec<String>, Vec<Vec<String>>), ReadError> {
    let bad = |message: String| ReadError::Xlsx {
        file: file.to_owned(),
        message,
    };
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(&bytes[..])).map_err(|e| bad(e.to_string()))?;
    let mut declared: u64 = 0;
    for i in 0..archive.len() {
        let part = archive.by_index_raw(i).map_err(|e| bad(e.to_string()))?;
        declared = declared.saturating_add(part.size());
    }
    if declared > bounds.uncompressed_bytes {
        return Err(ReadError::XlsxTooLarge {
            file: file.to_owned(),
            declared,
            max: bounds.uncompressed_bytes,
        });
    }
    // A declared size is only a claim: decompress each part once, counting, and stop at one
    // byte past what it declares (so at most the bound above in all, and nothing kept). zip 9
    // itself fails a part that inflates past its declared size; this count holds whatever
    // reader the workbook library uses.
    for i in 0..archive.len() {
        let part = archive.by_index(i).map_err(|e| bad(e.to_string()))?;
        let name = part
            .name()
            .map_or_else(|_| format!("#{i}"), |n| n.into_owned());
        let size = part.size();
        let mut limited = std::io::Read::take(part, size.saturating_add(1));
        let actual = std::io::copy(&mut limited, &mut std::io::sink())
            .map_err(|e| bad(format!("{name}: {e}")))?;
        if actual > size {
            return Err(ReadError::XlsxPartLies {
                file: file.to_owned(),
                part: name,
                declared: size,
            });
        }
    }
    let mut workbook: Xlsx<_> =
        Xlsx::new(std::io::Cursor::new(bytes)).map_err(|e| bad(e.to_string()))?;
    let first = workbook
        .sheet_names()
        .into_iter()
        .next()
        .ok_or_else(|| bad("the workbook has no sheet".into()))?;
    let mut cells = workbook
        .worksheet_cells_reader(&first)
        .map_err(|e| bad(e.to_string()))?;
    let mut rows: Vec<Vec<String>> = Vec::new();
    // The table starts at its first used row and column, wherever that is on the sheet.
    let mut first_column = u32::MAX;
    while let Some(c) = cells.next_cell().map_err(|e| bad(e.to_string()))? {
        let (row, column) = c.get_position();
        if row >= bounds.rows || column >= bounds.columns {
            return Err(ReadError::XlsxCellOutOfBounds {
                file: file.to_owned(),
                row: row.saturating_add(1),
                column: column.saturating_add(1),
                max_rows: bounds.rows,
                max_columns: bounds.columns,
            });
        }
        first_column = first_column.min(column);
        let (r, col) = (row as usize, column as usize);
        if rows.len() <= r {
            rows.resize_with(r + 1, Vec::new);
        }
        let line = &mut rows[r];
        if line.len() <= col {
            line.resize(col + 1, String::new());
        }
        line[col] = cell(&Data::from(c.get_value().clone()));
    }
    let skip = first_column.min(bounds.columns) as usize;
    let mut rows = rows.into_iter().skip_while(Vec::is_empty).map(|mut line| {
        line.drain(..skip.min(line.len()));
        line
    });
    let headers = rows.next().unwrap_or_default();
    Ok((headers, rows.collect()))
}

/// A table file as read: an XLSX workbook's first sheet, or CSV text (decoded: UTF-8 with or
/// without BOM, or Windows-1251).
enum TableFile {
    Sheet(Vec<String>, Vec<Vec<String>>),
    Text(String),
}

/// Reads a table file within [`IMPORT_FILE_BYTES_MAX`]; an XLSX one by its zip signature.
fn read_table_file(path: &Path) -> Result<TableFile, ReadError> {
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
        let (headers, records) = xlsx_table(bytes, &file, XLSX_BOUNDS)?;
        return Ok(TableFile::Sheet(headers, records));
    }
    let (text, _) = giasync_shared::import::decode_list(&bytes)
        .map_err(|source| ReadError::NotText { file, source })?;
    Ok(TableFile::Text(text))
}

/// Reads and checks a participant list; the outer error when the file cannot be read, the
/// inner one with every bad row.
pub fn read_list(path: &Path) -> Result<Result<Vec<ImportedRow>, Vec<RowError>>, ReadError> {
    Ok(match read_table_file(path)? {
        TableFile::Sheet(headers, records) => {
            giasync_shared::import::parse_table(&headers, records.into_iter().map(Ok))
        }
        TableFile::Text(text) => giasync_shared::import::parse_csv(&text),
    })
}

/// Reads and checks the results file of итоговое сочинение (изложение) the РЦОИ's processing
/// writes (CSV in UTF-8 or Windows-1251, or XLSX) against `rules`; the outer error when the file
/// cannot be read, the inner one with every bad row.
pub fn read_essay_results(
    path: &Path,
    rules: &giasync_shared::essay::EssayRules,
) -> Result<Result<Vec<giasync_shared::essay::EssayResult>, Vec<RowError>>, ReadError> {
    Ok(match read_table_file(path)? {
        TableFile::Sheet(headers, records) => {
            giasync_shared::essay::parse_results(rules, &headers, records.into_iter().map(Ok))
        }
        TableFile::Text(text) => giasync_shared::essay::parse_results_csv(rules, &text),
    })
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

    #[test]
    fn a_cell_far_out_on_the_sheet_is_refused_before_anything_is_allocated_for_it() {
        // A1 and XFD1048576: read as one dense range, 17 billion cells.
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        sheet.write_string(0, 0, "Фамилия").unwrap();
        sheet.write_string(1_048_575, 16_383, "x").unwrap();
        let refused = xlsx_table(book.save_to_buffer().unwrap(), "far.xlsx", XLSX_BOUNDS);
        assert!(
            matches!(
                refused,
                Err(ReadError::XlsxCellOutOfBounds {
                    row: 1_048_576,
                    column: 16_384,
                    ..
                })
            ),
            "{refused:?}"
        );
    }

    #[test]
    fn a_workbook_declaring_more_than_its_bound_is_refused_before_decompressing() {
        let book = xlsx(&[&["Фамилия", "Имя"], &["Иванова", "Анна"]]);
        let declared = {
            let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&book[..])).unwrap();
            (0..archive.len())
                .map(|i| archive.by_index_raw(i).unwrap().size())
                .sum::<u64>()
        };
        let tight = XlsxBounds {
            uncompressed_bytes: declared - 1,
            ..XLSX_BOUNDS
        };
        let refused = xlsx_table(book.clone(), "bomb.xlsx", tight);
        assert!(
            matches!(refused, Err(ReadError::XlsxTooLarge { .. })),
            "{refused:?}"
        );
        let exact = XlsxBounds {
            uncompressed_bytes: declared,
            ..XLSX_BOUNDS
        };
        let (headers, rows) = xlsx_table(book, "ok.xlsx", exact).unwrap();
        assert_eq!(headers, ["Фамилия", "Имя"]);
        assert_eq!(rows, [["Иванова", "Анна"]]);
    }

    /// A part whose headers declare 100 bytes but whose data inflates to 8 MiB: refused, naming
    /// the part, after reading 101 bytes of it and before the workbook reader sees it (the
    /// refusal is zip 9's own when the reader stops at the declared size, or ours).
    #[test]
    fn a_part_that_decompresses_to_more_than_it_declares_is_refused() {
        let mut buffer = std::io::Cursor::new(Vec::new());
        {
            let mut writer = zip::ZipWriter::new(&mut buffer);
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            writer
                .start_file("xl/worksheets/sheet1.xml", options)
                .unwrap();
            std::io::Write::write_all(&mut writer, &vec![b' '; 8 << 20]).unwrap();
            writer.finish().unwrap();
        }
        let mut book = buffer.into_inner();
        // Rewrite the uncompressed size (to 100) in the local header and the central directory.
        let patch = |book: &mut Vec<u8>, signature: &[u8], offset: usize| {
            let at = book
                .windows(4)
                .position(|w| w == signature)
                .expect("header present");
            book[at + offset..at + offset + 4].copy_from_slice(&100u32.to_le_bytes());
        };
        patch(&mut book, b"PK\x03\x04", 22);
        patch(&mut book, b"PK\x01\x02", 24);
        let refused = xlsx_table(book, "liar.xlsx", XLSX_BOUNDS);
        let part = "xl/worksheets/sheet1.xml";
        assert!(
            match &refused {
                Err(ReadError::XlsxPartLies {
                    declared, part: p, ..
                }) => *declared == 100 && p == part,
                Err(ReadError::Xlsx { message, .. }) =>
                    message.starts_with(part) && message.contains("declared uncompressed size"),
                _ => false,
            },
            "{refused:?}"
        );
    }

    #[test]
    fn a_table_starts_at_its_first_used_row_and_column() {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (c, text) in ["Фамилия", "Имя"].iter().enumerate() {
            sheet
                .write_string(2, 1 + u16::try_from(c).unwrap(), *text)
                .unwrap();
        }
        sheet.write_string(3, 1, "Иванова").unwrap();
        sheet.write_string(3, 2, "Анна").unwrap();
        let (headers, rows) =
            xlsx_table(book.save_to_buffer().unwrap(), "offset.xlsx", XLSX_BOUNDS).unwrap();
        assert_eq!(headers, ["Фамилия", "Имя"]);
        assert_eq!(rows, [["Иванова", "Анна"]]);
    }
}
