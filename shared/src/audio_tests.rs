//! Files built byte by byte as each container's specification lays them out, whole and cut
//! short. (Real recordings made by espeak-ng and sox are taken in by the node's tests.)
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::Cursor;

use super::*;

fn probe_bytes(bytes: &[u8]) -> Result<AudioInfo, AudioError> {
    probe(&mut Cursor::new(bytes), bytes.len() as u64)
}

/// 16 kHz mono 16-bit PCM: 32,000 bytes a second.
fn wav(seconds: u32) -> Vec<u8> {
    let data_len = 32_000 * seconds;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&16_000u32.to_le_bytes());
    out.extend_from_slice(&32_000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.resize(out.len() + data_len as usize, 0);
    out
}

/// MPEG-1 layer III, 128 kbit/s, 44.1 kHz, no padding: 417-byte frames of 1152 samples.
fn mp3(frames: usize, with_id3: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if with_id3 {
        out.extend_from_slice(b"ID3\x04\x00\x00\x00\x00\x00\x0a");
        out.extend_from_slice(&[0; 10]);
    }
    for _ in 0..frames {
        let mut frame = vec![0u8; 417];
        frame[..4].copy_from_slice(&[0xFF, 0xFB, 0x90, 0x00]);
        out.extend_from_slice(&frame);
    }
    out
}

fn ogg_page(flags: u8, granule: u64, body: &[u8]) -> Vec<u8> {
    let mut page = Vec::new();
    page.extend_from_slice(b"OggS\x00");
    page.push(flags);
    page.extend_from_slice(&granule.to_le_bytes());
    page.extend_from_slice(&[0; 12]); // serial, sequence, checksum (not read)
    let mut segments = Vec::new();
    let mut left = body.len();
    while left >= 255 {
        segments.push(255u8);
        left -= 255;
    }
    segments.push(u8::try_from(left).unwrap());
    page.push(u8::try_from(segments.len()).unwrap());
    page.extend_from_slice(&segments);
    page.extend_from_slice(body);
    page
}

/// Opus at 48 kHz with a pre-skip of 312 samples, `seconds` long.
fn ogg(seconds: u64, closed: bool) -> Vec<u8> {
    let mut head = b"OpusHead\x01\x01".to_vec();
    head.extend_from_slice(&312u16.to_le_bytes());
    head.extend_from_slice(&48_000u32.to_le_bytes());
    head.extend_from_slice(&[0, 0, 0]);
    let mut out = ogg_page(0x02, 0, &head);
    out.extend(ogg_page(0, 0, b"OpusTags"));
    out.extend(ogg_page(0, 48_000 + 312, &[1; 300]));
    let last = if closed { 0x04 } else { 0 };
    out.extend(ogg_page(last, seconds * 48_000 + 312, &[2; 100]));
    out
}

fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(8 + body.len())
        .unwrap()
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out
}

/// `ftyp`, `moov` with an `mvhd` (version 0, time scale 1000), `mdat`.
fn mp4(duration_ms: u32) -> Vec<u8> {
    let mut mvhd = vec![0u8; 4 + 8]; // version, flags, creation, modification
    mvhd.extend_from_slice(&1000u32.to_be_bytes());
    mvhd.extend_from_slice(&duration_ms.to_be_bytes());
    mvhd.resize(100, 0);
    let mut out = mp4_box(b"ftyp", b"M4A \x00\x00\x00\x00M4A isom");
    out.extend(mp4_box(b"moov", &mp4_box(b"mvhd", &mvhd)));
    out.extend(mp4_box(b"mdat", &[7; 5000]));
    out
}

#[test]
fn each_container_is_recognised_with_its_duration() {
    let info = probe_bytes(&wav(3)).unwrap();
    assert_eq!((info.format, info.duration_ms), (AudioFormat::Wav, 3000));
    // 100 frames of 1152 samples at 44.1 kHz: 2.612 s.
    let info = probe_bytes(&mp3(100, true)).unwrap();
    assert_eq!((info.format, info.duration_ms), (AudioFormat::Mp3, 2612));
    let info = probe_bytes(&mp3(100, false)).unwrap();
    assert_eq!(info.duration_ms, 2612);
    let info = probe_bytes(&ogg(7, true)).unwrap();
    assert_eq!((info.format, info.duration_ms), (AudioFormat::Ogg, 7000));
    let info = probe_bytes(&mp4(61_500)).unwrap();
    assert_eq!((info.format, info.duration_ms), (AudioFormat::Mp4, 61_500));
}

#[test]
fn a_file_cut_short_is_refused_as_such_in_every_container() {
    for (name, whole) in [
        ("wav", wav(2)),
        ("mp3", mp3(50, true)),
        ("ogg", ogg(3, true)),
        ("mp4", mp4(4000)),
    ] {
        for cut in [1, 13, whole.len() / 2] {
            let short = &whole[..whole.len() - cut];
            match probe_bytes(short) {
                Err(AudioError::Truncated { .. }) => {}
                other => panic!("{name} less {cut} bytes: {other:?}"),
            }
        }
    }
}

#[test]
fn an_empty_unknown_silent_or_unfinished_file_is_refused() {
    assert!(matches!(probe_bytes(b""), Err(AudioError::Empty)));
    assert!(matches!(
        probe_bytes(b"%PDF-1.4 not a recording"),
        Err(AudioError::Unknown)
    ));
    assert!(matches!(
        probe_bytes(&wav(0)),
        Err(AudioError::Silent {
            format: AudioFormat::Wav
        })
    ));
    // A recorder still writing: the stream's last page is not there yet.
    assert!(matches!(
        probe_bytes(&ogg(3, false)),
        Err(AudioError::Truncated {
            format: AudioFormat::Ogg,
            ..
        })
    ));
    // Garbage after good frames.
    let mut spoiled = mp3(20, false);
    spoiled.extend_from_slice(&[0x55; 2000]);
    assert!(matches!(
        probe_bytes(&spoiled),
        Err(AudioError::Unreadable {
            format: AudioFormat::Mp3,
            ..
        })
    ));
    // An MP4 with no media.
    let mut no_mdat = mp4(1000);
    no_mdat.truncate(no_mdat.len() - 5008);
    assert!(matches!(
        probe_bytes(&no_mdat),
        Err(AudioError::Unreadable {
            format: AudioFormat::Mp4,
            ..
        })
    ));
}

#[test]
fn the_error_says_what_is_wrong_in_words() {
    let whole = wav(2);
    let err = probe_bytes(&whole[..whole.len() - 100]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a wav file cut short: its header says 64044 bytes, the file has 63944"
    );
}

#[test]
fn a_box_claiming_more_than_any_file_is_refused_not_looped_over() {
    // ftyp, then a box whose 64-bit size would wrap the position back to 0.
    let mut file = mp4_box(b"ftyp", b"M4A \x00\x00\x00\x00M4A isom");
    let at = file.len() as u64;
    file.extend_from_slice(&1u32.to_be_bytes());
    file.extend_from_slice(b"free");
    file.extend_from_slice(&(u64::MAX - at + 1).to_be_bytes());
    assert!(matches!(
        probe_bytes(&file),
        Err(AudioError::Truncated {
            format: AudioFormat::Mp4,
            ..
        })
    ));
}
