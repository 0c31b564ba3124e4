//! What a recording file is: its container (WAV, MP3, OGG, MP4 audio) and a duration read from
//! it, or why it cannot be taken in. Recording software in a school writes one of these; a file
//! that is empty, cut short (a copy interrupted, a recording still being written) or not audio at
//! all must be refused when it is taken in, never stored as if fine.
//!
//! Only the containers' own structure is read: RIFF chunks, MPEG audio frame headers, Ogg pages,
//! ISO BMFF boxes. Nothing is decoded. Reads go through [`Read`] + [`Seek`], a few bytes at a
//! time, so a file of any size is checked in constant memory.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};

/// A recording's container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AudioFormat {
    Wav,
    Mp3,
    Ogg,
    Mp4,
}

impl AudioFormat {
    /// The name stored in the documents.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wav => "wav",
            Self::Mp3 => "mp3",
            Self::Ogg => "ogg",
            Self::Mp4 => "mp4",
        }
    }

    /// The MIME type the pages serve it as.
    #[must_use]
    pub fn mime(self) -> &'static str {
        match self {
            Self::Wav => "audio/wav",
            Self::Mp3 => "audio/mpeg",
            Self::Ogg => "audio/ogg",
            Self::Mp4 => "audio/mp4",
        }
    }

    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Wav, Self::Mp3, Self::Ogg, Self::Mp4]
            .into_iter()
            .find(|f| f.as_str() == text)
    }
}

impl fmt::Display for AudioFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a recording file was found to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioInfo {
    pub format: AudioFormat,
    pub duration_ms: u64,
}

/// Why a file is not taken in as a recording.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    #[error("the file is empty")]
    Empty,
    #[error("not a recording: the file is not WAV, MP3, OGG or MP4 audio")]
    Unknown,
    #[error("a {format} file cut short: {reason}")]
    Truncated { format: AudioFormat, reason: String },
    #[error("a {format} file that cannot be read: {reason}")]
    Unreadable { format: AudioFormat, reason: String },
    #[error("a {format} recording with no sound: its duration is 0")]
    Silent { format: AudioFormat },
    #[error("reading the file: {0}")]
    Io(#[from] io::Error),
}

/// Reads what `file` (of `len` bytes) is.
pub fn probe(file: &mut (impl Read + Seek), len: u64) -> Result<AudioInfo, AudioError> {
    if len == 0 {
        return Err(AudioError::Empty);
    }
    let mut head = [0u8; 12];
    let n = read_up_to(file, 0, &mut head)?;
    let head = &head[..n];
    let info = if head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WAVE") {
        wav(file, len)?
    } else if head.starts_with(b"OggS") {
        ogg(file, len)?
    } else if head.get(4..8) == Some(b"ftyp") {
        mp4(file, len)?
    } else if head.starts_with(b"ID3") || mp3_header(head).is_some() {
        mp3(file, len)?
    } else {
        return Err(AudioError::Unknown);
    };
    if info.duration_ms == 0 {
        return Err(AudioError::Silent {
            format: info.format,
        });
    }
    Ok(info)
}

/// Reads into `buf` from `at`; gives how many bytes were there.
fn read_up_to(file: &mut (impl Read + Seek), at: u64, buf: &mut [u8]) -> io::Result<usize> {
    file.seek(SeekFrom::Start(at))?;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn truncated(format: AudioFormat, reason: impl Into<String>) -> AudioError {
    AudioError::Truncated {
        format,
        reason: reason.into(),
    }
}

fn unreadable(format: AudioFormat, reason: impl Into<String>) -> AudioError {
    AudioError::Unreadable {
        format,
        reason: reason.into(),
    }
}

fn le16(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes([b[at], b[at + 1]]))
}
fn le32(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]))
}
fn be32(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]))
}
fn be64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

/// RIFF/WAVE: the `fmt ` chunk's byte rate and the `data` chunk's length.
fn wav(file: &mut (impl Read + Seek), len: u64) -> Result<AudioInfo, AudioError> {
    const F: AudioFormat = AudioFormat::Wav;
    let mut riff = [0u8; 12];
    read_up_to(file, 0, &mut riff)?;
    let riff_end = 8 + le32(&riff, 4);
    if riff_end > len {
        return Err(truncated(
            F,
            format!("its header says {riff_end} bytes, the file has {len}"),
        ));
    }
    let (mut at, mut byte_rate, mut data) = (12u64, None, None);
    while at + 8 <= riff_end {
        let mut chunk = [0u8; 24];
        let n = read_up_to(file, at, &mut chunk)?;
        let size = le32(&chunk, 4);
        let body_end = at + 8 + size;
        if body_end > riff_end {
            return Err(truncated(
                F,
                format!("the {:?} chunk runs past the end", text4(&chunk[..4])),
            ));
        }
        match &chunk[..4] {
            b"fmt " if size >= 16 && n >= 24 => byte_rate = Some(le32(&chunk, 16)),
            b"data" => data = Some(size),
            _ => {}
        }
        at = body_end + (size & 1);
    }
    let byte_rate = byte_rate
        .filter(|r| *r > 0)
        .ok_or_else(|| unreadable(F, "no format chunk with a byte rate"))?;
    let data = data.ok_or_else(|| unreadable(F, "no data chunk"))?;
    Ok(AudioInfo {
        format: F,
        duration_ms: data * 1000 / byte_rate,
    })
}

fn text4(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// An MPEG audio frame header: (frame bytes, samples, sample rate). Layer III only, the one
/// recording software writes.
fn mp3_header(b: &[u8]) -> Option<(u64, u64, u64)> {
    if b.len() < 4 || b[0] != 0xFF || b[1] & 0xE0 != 0xE0 {
        return None;
    }
    let version = (b[1] >> 3) & 0b11; // 0: MPEG 2.5, 2: MPEG 2, 3: MPEG 1
    let layer = (b[1] >> 1) & 0b11; // 1: layer III
    if version == 1 || layer != 1 {
        return None;
    }
    let bitrate_index = usize::from(b[2] >> 4);
    let rate_index = usize::from((b[2] >> 2) & 0b11);
    let padding = u64::from((b[2] >> 1) & 1);
    const V1: [u64; 15] = [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ];
    const V2: [u64; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    let kbit = if version == 3 { V1 } else { V2 }
        .get(bitrate_index)
        .copied()?;
    let base_rate = [44_100u64, 48_000, 32_000].get(rate_index).copied()?;
    let rate = match version {
        3 => base_rate,
        2 => base_rate / 2,
        _ => base_rate / 4,
    };
    if kbit == 0 {
        return None; // "free" bitrate: not written by recorders, not measurable here
    }
    let (samples, factor) = if version == 3 { (1152, 144) } else { (576, 72) };
    let bytes = factor * kbit * 1000 / rate + padding;
    Some((bytes, samples, rate))
}

/// MP3: every frame header from the first to the last, each frame whole.
fn mp3(file: &mut (impl Read + Seek), len: u64) -> Result<AudioInfo, AudioError> {
    const F: AudioFormat = AudioFormat::Mp3;
    let mut at = 0u64;
    let mut id3 = [0u8; 10];
    read_up_to(file, 0, &mut id3)?;
    if id3.starts_with(b"ID3") {
        let size = id3[6..10]
            .iter()
            .fold(0u64, |acc, b| (acc << 7) | u64::from(b & 0x7F));
        at = 10 + size + if id3[5] & 0x10 != 0 { 10 } else { 0 };
        if at >= len {
            return Err(truncated(F, "the file ends inside its ID3 tag"));
        }
    }
    let (mut frames, mut samples_total, mut rate_seen) = (0u64, 0u64, 0u64);
    let mut reader = io::BufReader::with_capacity(64 * 1024, file);
    reader.seek(SeekFrom::Start(at))?;
    let mut header = [0u8; 4];
    while at < len {
        let n = {
            let mut filled = 0;
            while filled < 4 {
                match reader.read(&mut header[filled..])? {
                    0 => break,
                    k => filled += k,
                }
            }
            filled
        };
        if header[..n].starts_with(b"TAG") || header[..n].starts_with(b"APET") {
            break; // ID3v1 or APE tag at the end
        }
        let Some((bytes, samples, rate)) = mp3_header(&header[..n]) else {
            if frames == 0 {
                return Err(unreadable(F, "no MPEG audio frame after the tag"));
            }
            if len - at < 4 {
                return Err(truncated(F, format!("a partial frame header at byte {at}")));
            }
            return Err(unreadable(F, format!("no frame header at byte {at}")));
        };
        if at + bytes > len {
            return Err(truncated(
                F,
                format!(
                    "the frame at byte {at} needs {bytes} bytes, {} are left",
                    len - at
                ),
            ));
        }
        frames += 1;
        samples_total += samples;
        rate_seen = rate;
        at += bytes;
        reader.seek_relative(i64::try_from(bytes).unwrap_or(i64::MAX) - 4)?;
    }
    if frames == 0 || rate_seen == 0 {
        return Err(unreadable(F, "no MPEG audio frame"));
    }
    Ok(AudioInfo {
        format: F,
        duration_ms: samples_total * 1000 / rate_seen,
    })
}

/// Ogg (Opus or Vorbis): every page whole, the stream closed by its last page, the duration
/// from that page's granule position.
fn ogg(file: &mut (impl Read + Seek), len: u64) -> Result<AudioInfo, AudioError> {
    const F: AudioFormat = AudioFormat::Ogg;
    let (mut at, mut rate, mut pre_skip) = (0u64, 0u64, 0u64);
    let (mut last_granule, mut ended) = (0u64, false);
    let mut first = true;
    while at < len {
        let mut header = [0u8; 27 + 255];
        let n = read_up_to(file, at, &mut header)?;
        if n < 27 {
            return Err(truncated(F, format!("a partial page header at byte {at}")));
        }
        if &header[..4] != b"OggS" {
            return Err(unreadable(F, format!("no page at byte {at}")));
        }
        let segments = usize::from(header[26]);
        if n < 27 + segments {
            return Err(truncated(F, format!("a partial page header at byte {at}")));
        }
        let body: u64 = header[27..27 + segments]
            .iter()
            .map(|&s| u64::from(s))
            .sum();
        let page_end = at + 27 + segments as u64 + body;
        if page_end > len {
            return Err(truncated(
                F,
                format!("the page at byte {at} runs past the end"),
            ));
        }
        if first {
            let mut packet = [0u8; 19];
            read_up_to(file, at + 27 + segments as u64, &mut packet)?;
            if packet.starts_with(b"OpusHead") {
                rate = 48_000;
                pre_skip = le16(&packet, 10);
            } else if packet.starts_with(b"\x01vorbis") {
                rate = le32(&packet, 12);
            } else {
                return Err(unreadable(F, "neither Opus nor Vorbis"));
            }
            first = false;
        }
        let granule = u64::from_le_bytes(header[6..14].try_into().unwrap_or([0; 8]));
        if granule != u64::MAX {
            last_granule = granule;
        }
        ended = header[5] & 0x04 != 0;
        at = page_end;
    }
    if !ended {
        return Err(truncated(F, "the stream has no last page"));
    }
    if rate == 0 {
        return Err(unreadable(F, "no sample rate"));
    }
    Ok(AudioInfo {
        format: F,
        duration_ms: last_granule.saturating_sub(pre_skip).saturating_mul(1000) / rate,
    })
}

/// MP4 audio (ISO BMFF): every top-level box whole, the duration from `moov/mvhd`.
fn mp4(file: &mut (impl Read + Seek), len: u64) -> Result<AudioInfo, AudioError> {
    const F: AudioFormat = AudioFormat::Mp4;
    let (mut at, mut moov, mut mdat) = (0u64, None, false);
    while at < len {
        let mut header = [0u8; 16];
        let n = read_up_to(file, at, &mut header)?;
        if n < 8 {
            return Err(truncated(F, format!("a partial box header at byte {at}")));
        }
        let (size, header_len) = match be32(&header, 0) {
            0 => (len - at, 8),
            1 if n >= 16 => (be64(&header, 8), 16),
            1 => return Err(truncated(F, format!("a partial box header at byte {at}"))),
            s => (s, 8),
        };
        if size < header_len {
            return Err(unreadable(F, format!("a box of {size} bytes at byte {at}")));
        }
        if at.checked_add(size).is_none_or(|end| end > len) {
            return Err(truncated(
                F,
                format!(
                    "the {:?} box at byte {at} runs past the end",
                    text4(&header[4..8])
                ),
            ));
        }
        match &header[4..8] {
            b"moov" => moov = Some((at + header_len, at + size)),
            b"mdat" => mdat = true,
            _ => {}
        }
        at += size;
    }
    let (mut at, end) = moov.ok_or_else(|| unreadable(F, "no moov box"))?;
    if !mdat {
        return Err(unreadable(F, "no mdat box: no media"));
    }
    while at + 8 <= end {
        let mut b = [0u8; 40];
        read_up_to(file, at, &mut b)?;
        let size = be32(&b, 0);
        if &b[4..8] == b"mvhd" {
            let (timescale, duration) = if b[8] == 1 {
                (be32(&b, 28), be64(&b, 32))
            } else {
                (be32(&b, 20), be32(&b, 24))
            };
            if timescale == 0 {
                return Err(unreadable(F, "a time scale of 0"));
            }
            return Ok(AudioInfo {
                format: F,
                duration_ms: duration.saturating_mul(1000) / timescale,
            });
        }
        if size < 8 {
            break;
        }
        at += size;
    }
    Err(unreadable(F, "no mvhd box in moov"))
}

#[cfg(test)]
#[path = "audio_tests.rs"]
mod tests;
