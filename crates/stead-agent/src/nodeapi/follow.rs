//! Reading a container's log file as it grows, across rotations ([`crate::log_rotation`]).
//!
//! A [`LogFollower`] holds the file it reads open, so a rotation (the file renamed away, a
//! fresh one in its place) never cuts a read short. When it reaches the end of its file it
//! checks whether the log's path still names that file; if not, the file is final: it reads
//! the rest and carries on with the next newer file, found among the rotated files by inode,
//! so no record is read twice or skipped (unless the log rotated so often that a file was
//! deleted before it was read, which upstream's kubelet cannot avoid either).
//!
//! Like upstream's kubelet, a plain read (no `follow`) reads the current file only.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::log_rotation::{file_id, rotated_files};

/// How often [`next_after`] looks again when the log rotated while it was choosing a file.
const RESOLVE_TRIES: usize = 8;

/// Reads one container log from where it was opened on, across rotations.
#[derive(Debug)]
pub struct LogFollower {
    path: PathBuf,
    /// The file being read; `None` until the log exists.
    file: Option<File>,
    /// The rotated number of that file, once it is known to be rotated; `None` while it is
    /// (or was when opened) the current file.
    number: Option<u64>,
}

impl LogFollower {
    /// Starts at the beginning of the log's current file (none yet: at its creation).
    pub fn open(path: &Path) -> LogFollower {
        LogFollower {
            path: path.to_path_buf(),
            file: File::open(path).ok(),
            number: None,
        }
    }

    /// Everything written since the last call: the rest of the file being read and, when it
    /// was rotated, of the newer files. Never blocks on the writer; read errors end the read
    /// early (what was read is returned, the rest comes with a later call).
    pub fn read_new(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let Some(file) = &mut self.file else {
                // The log came to be since: from its oldest file on.
                match next_after(&self.path, None) {
                    Some((f, number)) => {
                        self.file = Some(f);
                        self.number = number;
                        continue;
                    }
                    None => return out,
                }
            };
            if file.read_to_end(&mut out).is_err() {
                return out;
            }
            let Some((next, number)) = self.successor() else {
                return out;
            };
            // The file was rotated away before we looked: nothing more goes into it, so what
            // is left of it comes before the next file.
            if let Some(file) = &mut self.file
                && file.read_to_end(&mut out).is_err()
            {
                return out;
            }
            self.file = Some(next);
            self.number = number;
        }
    }

    /// The file after the one being read, if that one was rotated.
    fn successor(&self) -> Option<(File, Option<u64>)> {
        let ours = file_id(&self.file.as_ref()?.metadata().ok()?);
        let number = match self.number {
            Some(n) => Some(n),
            None => {
                let current = fs::metadata(&self.path).ok()?;
                if file_id(&current) == ours {
                    return None;
                }
                // Rotated: under which number? None when it has been deleted already.
                rotated_files(&self.path).into_iter().find_map(|(n, p)| {
                    let meta = fs::metadata(p).ok()?;
                    (file_id(&meta) == ours).then_some(n)
                })
            }
        };
        next_after(&self.path, number)
    }
}

/// Opens the oldest file of the log at `path` newer than rotated file `after` (`None`: the
/// oldest there is), with its number when it is a rotated one.
fn next_after(path: &Path, after: Option<u64>) -> Option<(File, Option<u64>)> {
    let newer = |files: Vec<(u64, PathBuf)>| {
        files
            .into_iter()
            .find(|(n, _)| after.is_none_or(|a| *n > a))
    };
    for _ in 0..RESOLVE_TRIES {
        if let Some((n, p)) = newer(rotated_files(path)) {
            match File::open(p) {
                Ok(f) => return Some((f, Some(n))),
                // Deleted meanwhile: look again.
                Err(_) => continue,
            }
        }
        let current = File::open(path).ok()?;
        let id = file_id(&current.metadata().ok()?);
        // A rotation between the listing and the open would make `current` skip a file.
        match newer(rotated_files(path)) {
            None => return Some((current, None)),
            Some((n, p)) => match fs::metadata(p) {
                Ok(meta) if file_id(&meta) == id => return Some((current, Some(n))),
                _ => continue,
            },
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_rotation::{LogRotation, RotatingLog};

    fn record(i: usize) -> Vec<u8> {
        format!("2026-01-01T00:00:00Z stdout F {i}\n").into_bytes()
    }

    fn numbers(bytes: &[u8]) -> Vec<usize> {
        String::from_utf8_lossy(bytes)
            .lines()
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect()
    }

    #[test]
    fn a_follower_reads_every_record_once_across_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let rotation = LogRotation {
            max_size: 120,
            max_files: 3,
        };
        let mut log = RotatingLog::open(&path, rotation).unwrap();
        let mut follower = LogFollower::open(&path);
        let mut seen = Vec::new();
        let mut i = 0;
        // Read after every 1, 2, ... 7 records: several rotations fall between some reads,
        // none between others; never more than the kept files hold.
        for batch in (1..=7).cycle().take(40) {
            for _ in 0..batch {
                log.write_record(&record(i)).unwrap();
                i += 1;
            }
            seen.extend(numbers(&follower.read_new()));
        }
        assert!(rotated_files(&path).len() == 2);
        assert_eq!(seen, (0..i).collect::<Vec<_>>());
    }

    #[test]
    fn a_follower_of_a_log_that_is_not_there_yet_starts_at_its_creation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let mut follower = LogFollower::open(&path);
        assert!(follower.read_new().is_empty());
        let mut log = RotatingLog::open(
            &path,
            LogRotation {
                max_size: 1,
                max_files: 5,
            },
        )
        .unwrap();
        log.write_record(&record(0)).unwrap();
        log.write_record(&record(1)).unwrap();
        assert_eq!(numbers(&follower.read_new()), vec![0, 1]);
    }

    #[test]
    fn a_follower_that_fell_behind_carries_on_with_the_oldest_kept_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let rotation = LogRotation {
            max_size: 1,
            max_files: 2,
        };
        let mut log = RotatingLog::open(&path, rotation).unwrap();
        log.write_record(&record(0)).unwrap();
        let mut follower = LogFollower::open(&path);
        for i in 1..5 {
            log.write_record(&record(i)).unwrap();
        }
        // Files 1 and 2 were deleted before the follower came back.
        assert_eq!(numbers(&follower.read_new()), vec![0, 3, 4]);
    }
}
