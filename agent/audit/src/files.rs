//! The log's files on disk: their names and chain order, reading lines and the end of a file,
//! the line hash, and the `audit.head` file that pins the last record.

use crate::sys;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The file new records go to.
pub const LIVE: &str = "audit.jsonl";
/// The last record's seq and hash, so that removing or editing the last record is detectable.
pub const HEAD: &str = "audit.head";
const HEAD_TMP: &str = "audit.head.tmp";
/// The file writers lock around read-tail-and-append.
pub const LOCK: &str = "audit.lock";
/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The name of rotated file number `n` (1 is the oldest).
pub fn rotated_name(n: u64) -> String {
    format!("audit.{n}.jsonl")
}

fn rotated_number(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("audit.")?.strip_suffix(".jsonl")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&n| n > 0)
}

/// The rotated files' numbers, ascending.
pub fn rotated_numbers(dir: &Path) -> io::Result<Vec<u64>> {
    let mut numbers = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(n) = entry.file_name().to_str().and_then(rotated_number) {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// Every file of the log in chain order: rotated files oldest first, then the live file if it
/// exists.
pub fn chain_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = rotated_numbers(dir)?
        .into_iter()
        .map(|n| dir.join(rotated_name(n)))
        .collect();
    let live = dir.join(LIVE);
    if live.exists() {
        files.push(live);
    }
    Ok(files)
}

/// SHA-256 (hex) of a line's bytes without its newline: what the next record's `prev` holds.
pub fn line_hash(line: &[u8]) -> String {
    hex::encode(Sha256::digest(line))
}

/// One line of a log file.
pub struct Line {
    /// 1-based.
    pub number: usize,
    /// Without the newline.
    pub bytes: Vec<u8>,
    /// Whether the line ended with a newline; only an interrupted write leaves one without.
    pub terminated: bool,
}

/// Reads every line of a file.
pub fn read_lines(path: &Path) -> io::Result<Vec<Line>> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut lines = Vec::new();
    loop {
        let mut bytes = Vec::new();
        if reader.read_until(b'\n', &mut bytes)? == 0 {
            return Ok(lines);
        }
        let terminated = bytes.last() == Some(&b'\n');
        if terminated {
            bytes.pop();
        }
        lines.push(Line {
            number: lines.len() + 1,
            bytes,
            terminated,
        });
    }
}

/// The end of a file: its last complete line and the unterminated bytes after it, if any.
pub struct FileEnd {
    pub len: u64,
    pub last_line: Option<Vec<u8>>,
    /// Where the unterminated bytes start, and the bytes.
    pub partial: Option<(u64, Vec<u8>)>,
}

/// Reads only as much of the end of a file as it takes to find its last complete line, so that
/// an append does not read the whole live file.
pub fn read_end(path: &Path) -> io::Result<FileEnd> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut chunk: u64 = 64 * 1024;
    loop {
        let start = len.saturating_sub(chunk);
        file.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::with_capacity((len - start) as usize);
        (&mut file).take(len - start).read_to_end(&mut buf)?;
        // The buffer holds everything from `start`; when it begins mid-line, enough of it must
        // remain after the first newline to contain the whole last line.
        let (partial, complete) = match buf.iter().rposition(|&b| b == b'\n') {
            Some(i) if i + 1 < buf.len() => (Some(i + 1), &buf[..=i]),
            Some(i) => (None, &buf[..=i]),
            None if buf.is_empty() => (None, &buf[..0]),
            None => (Some(0), &buf[..0]),
        };
        let body = complete.strip_suffix(b"\n");
        let last_line_start = body.map(|b| b.iter().rposition(|&c| c == b'\n'));
        let found = match (body, last_line_start) {
            (None, _) => start == 0,
            (Some(_), Some(Some(_))) => true,
            (Some(_), _) => start == 0,
        };
        if !found {
            chunk = chunk.saturating_mul(2);
            continue;
        }
        let last_line = match (body, last_line_start) {
            (Some(b), Some(Some(i))) => Some(b[i + 1..].to_vec()),
            (Some(b), _) => Some(b.to_vec()),
            (None, _) => None,
        };
        let partial = partial.map(|p| (start + p as u64, buf[p..].to_vec()));
        return Ok(FileEnd {
            len,
            last_line,
            partial,
        });
    }
}

/// What `audit.head` holds: the seq and line hash of the last record written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

/// The state of `audit.head`.
pub enum HeadState {
    Missing,
    Valid(Head),
    /// The file exists but is not a head; the text says why.
    Invalid(String),
}

pub fn read_head(dir: &Path) -> io::Result<HeadState> {
    let bytes = match std::fs::read(dir.join(HEAD)) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HeadState::Missing),
        Err(e) => return Err(e),
    };
    match serde_json::from_slice::<Head>(&bytes) {
        Ok(h) if h.hash.len() == 64 && h.hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(HeadState::Valid(h))
        }
        Ok(h) => Ok(HeadState::Invalid(format!(
            "hash {:?} is not 64 hex digits",
            h.hash
        ))),
        Err(e) => Ok(HeadState::Invalid(e.to_string())),
    }
}

/// Replaces `audit.head` atomically: a reader sees the old head or the new one, never a mix.
pub fn write_head(dir: &Path, head: &Head) -> io::Result<()> {
    let tmp = dir.join(HEAD_TMP);
    let mut text = serde_json::to_vec(head).map_err(io::Error::other)?;
    text.push(b'\n');
    {
        let mut f = sys::private_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(HEAD))?;
    sys::sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end_of(content: &[u8]) -> FileEnd {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, content).unwrap();
        read_end(&p).unwrap()
    }

    #[test]
    fn the_end_of_a_file_is_its_last_complete_line_and_any_unterminated_bytes() {
        let e = end_of(b"");
        assert!(e.last_line.is_none() && e.partial.is_none());
        let e = end_of(b"one\n");
        assert_eq!(e.last_line.as_deref(), Some(&b"one"[..]));
        assert!(e.partial.is_none());
        let e = end_of(b"one\ntwo\n");
        assert_eq!(e.last_line.as_deref(), Some(&b"two"[..]));
        let e = end_of(b"one\ntwo\nthr");
        assert_eq!(e.last_line.as_deref(), Some(&b"two"[..]));
        assert_eq!(e.partial, Some((8, b"thr".to_vec())));
        let e = end_of(b"par");
        assert!(e.last_line.is_none());
        assert_eq!(e.partial, Some((0, b"par".to_vec())));
    }

    #[test]
    fn the_end_of_a_file_is_found_when_the_last_line_is_longer_than_a_read_chunk() {
        let long = vec![b'x'; 200 * 1024];
        let mut content = b"first\n".to_vec();
        content.extend_from_slice(&long);
        content.push(b'\n');
        content.extend_from_slice(&long[..100 * 1024]);
        let e = end_of(&content);
        assert_eq!(e.last_line.as_deref(), Some(&long[..]));
        assert_eq!(
            e.partial,
            Some((6 + long.len() as u64 + 1, long[..100 * 1024].to_vec()))
        );
    }

    #[test]
    fn only_numbered_rotated_files_belong_to_the_chain() {
        assert_eq!(rotated_number("audit.1.jsonl"), Some(1));
        assert_eq!(rotated_number("audit.12.jsonl"), Some(12));
        for name in [
            "audit.jsonl",
            "audit.0.jsonl",
            "audit.x.jsonl",
            "audit..jsonl",
            "audit.1.jsonl.bak",
            "audit.-1.jsonl",
        ] {
            assert_eq!(rotated_number(name), None, "{name}");
        }
    }
}
