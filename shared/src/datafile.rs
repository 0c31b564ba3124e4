//! Per-year data files (TOML, checked on load): how they fail to load. The production calendar
//! (`crate::workdays`) and the year's deadlines and choices (`crate::year`) share it; every
//! error names the file.

use std::path::Path;

use serde::de::DeserializeOwned;

/// A data file that does not load.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataFileError {
    #[error("{file}: cannot read the file")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: format {format} is not supported (this build reads format {supported})")]
    UnsupportedFormat {
        file: String,
        format: i64,
        supported: i64,
    },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

impl DataFileError {
    /// A file that parsed but says something it may not.
    pub fn invalid(file: &str, message: impl Into<String>) -> Self {
        DataFileError::Invalid {
            file: file.to_owned(),
            message: message.into(),
        }
    }
}

/// Reads the file at `path` as text; the error names it.
pub fn read(path: &Path) -> Result<(String, String), DataFileError> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((text, file)),
        Err(source) => Err(DataFileError::Io { file, source }),
    }
}

/// Parses `text` (the file `file`) as `T`, after checking its `format` is `supported`.
pub fn parse<T: DeserializeOwned>(
    text: &str,
    file: &str,
    supported: i64,
) -> Result<T, DataFileError> {
    #[derive(serde::Deserialize)]
    struct Format {
        format: i64,
    }
    let parse_error = |e: toml::de::Error| DataFileError::Parse {
        file: file.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    };
    // The format first, so a file of another version says so rather than failing on a field.
    let format: Format = toml::from_str::<toml::Table>(text)
        .map_err(parse_error)
        .and_then(|t| toml::Value::Table(t).try_into().map_err(parse_error))?;
    if format.format != supported {
        return Err(DataFileError::UnsupportedFormat {
            file: file.to_owned(),
            format: format.format,
            supported,
        });
    }
    toml::from_str(text).map_err(parse_error)
}
