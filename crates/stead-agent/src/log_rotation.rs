//! A container's CRI log on disk and its rotation by size, upstream's `containerLogMaxSize`
//! and `containerLogMaxFiles`.
//!
//! The shim writes through a [`RotatingLog`]. Before a record would take the current file
//! (`<path>`) past `max_size`, the file is rotated: it gets the name `<path>.<n>` (`n` counts
//! up from 1 over the life of the log; upstream uses a timestamp and gzips older files, stead
//! keeps them plain) and a fresh empty file takes `<path>`; then the oldest rotated files are
//! deleted until at most `max_files` files, the current one included, are left. So every file
//! stays within `max_size` (a single record longer than that, at most 16 KiB plus its prefix,
//! gets a file of its own).
//!
//! The rotation never leaves `<path>` missing: the current file is first hard-linked to its
//! rotated name, the fresh file is made under `<path>.tmp` and renamed over `<path>`. A reader
//! that opened `<path>` keeps reading the same file after the rotation; it notices the rotation
//! when `<path>` names another file, finds its file among [`rotated_files`] by inode, and
//! continues with the next newer one (see `nodeapi::logs::LogFollower`).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Upstream's default `containerLogMaxSize`: 10Mi.
pub const DEFAULT_MAX_SIZE: u64 = 10 * 1024 * 1024;
/// Upstream's default `containerLogMaxFiles`.
pub const DEFAULT_MAX_FILES: u32 = 5;

/// When a container's log rotates and how many of its files are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRotation {
    /// The most bytes a log file holds before it is rotated (`containerLogMaxSize`).
    pub max_size: u64,
    /// The most files kept per container log, the current one included
    /// (`containerLogMaxFiles`; upstream requires at least 2, less is taken as 2).
    pub max_files: u32,
}

impl Default for LogRotation {
    fn default() -> Self {
        LogRotation {
            max_size: DEFAULT_MAX_SIZE,
            max_files: DEFAULT_MAX_FILES,
        }
    }
}

/// The name of the `n`th rotated file of the log at `path`: `<path>.<n>`.
pub fn rotated_path(path: &Path, n: u64) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// The rotated files of the log at `path`, oldest first, with their numbers.
pub fn rotated_files(path: &Path) -> Vec<(u64, PathBuf)> {
    let (Some(dir), Some(base)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let prefix = format!("{}.", base.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let n = name.to_str()?.strip_prefix(&prefix)?.parse::<u64>().ok()?;
            Some((n, e.path()))
        })
        .collect();
    files.sort();
    files
}

/// Removes the log at `path` with its rotated files.
pub fn remove_log(path: &Path) {
    for (_, file) in rotated_files(path) {
        let _ = fs::remove_file(file);
    }
    let _ = fs::remove_file(tmp_path(path));
    let _ = fs::remove_file(path);
}

/// The writing side of a container log: appends records, rotating by size.
pub struct RotatingLog {
    path: PathBuf,
    file: File,
    /// Bytes in the current file.
    size: u64,
    /// The number the next rotated file gets.
    next: u64,
    rotation: LogRotation,
}

impl RotatingLog {
    /// Opens (or creates) the log at `path` for appending; a log that exists already, with
    /// rotated files, carries on where it was.
    pub fn open(path: &Path, rotation: LogRotation) -> std::io::Result<RotatingLog> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        let next = rotated_files(path).last().map_or(1, |(n, _)| n + 1);
        Ok(RotatingLog {
            path: path.to_path_buf(),
            file,
            size,
            next,
            rotation,
        })
    }

    /// Appends one whole record, rotating first when it would not fit in the current file.
    /// A failed rotation leaves the current file in place (the next record tries again).
    pub fn write_record(&mut self, record: &[u8]) -> std::io::Result<()> {
        if self.size > 0 && self.size + record.len() as u64 > self.rotation.max_size {
            let _ = self.rotate();
        }
        self.file.write_all(record)?;
        self.size += record.len() as u64;
        Ok(())
    }

    /// Current file → `<path>.<next>`, a fresh current file, the oldest files deleted.
    fn rotate(&mut self) -> std::io::Result<()> {
        let rotated = rotated_path(&self.path, self.next);
        fs::hard_link(&self.path, &rotated)?;
        let tmp = tmp_path(&self.path);
        let _ = fs::remove_file(&tmp);
        let fresh = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&tmp)
            .and_then(|f| fs::rename(&tmp, &self.path).map(|()| f));
        match fresh {
            Ok(f) => self.file = f,
            Err(e) => {
                let _ = fs::remove_file(&rotated);
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        }
        self.size = 0;
        self.next += 1;
        let keep = self.rotation.max_files.max(2) as usize - 1;
        let rotated = rotated_files(&self.path);
        for (_, old) in &rotated[..rotated.len().saturating_sub(keep)] {
            let _ = fs::remove_file(old);
        }
        Ok(())
    }
}

/// The identity of an open file or a path's file: (device, inode).
pub fn file_id(meta: &fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> Vec<u8> {
        format!("2026-01-01T00:00:00Z stdout F line {i:04}\n").into_bytes()
    }

    #[test]
    fn files_stay_within_the_size_and_the_oldest_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let rotation = LogRotation {
            max_size: 100,
            max_files: 3,
        };
        let mut log = RotatingLog::open(&path, rotation).unwrap();
        let len = record(0).len();
        for i in 0..50 {
            log.write_record(&record(i)).unwrap();
        }
        let rotated = rotated_files(&path);
        assert_eq!(rotated.len(), 2, "{rotated:?}");
        let per_file = 100 / len;
        // 50 records, `per_file` to a file: the last file holds the rest.
        let in_current = match 50 % per_file {
            0 => per_file,
            r => r,
        };
        let current = fs::read(&path).unwrap();
        assert_eq!(current.len(), in_current * len);
        assert!(current.ends_with(&record(49)));
        for (_, f) in &rotated {
            assert_eq!(fs::metadata(f).unwrap().len() as usize, per_file * len);
        }
        // The newest rotated file ends right before the current one starts.
        let newest = fs::read(&rotated[1].1).unwrap();
        assert!(newest.ends_with(&record(49 - in_current)));
        // A reopened log numbers on.
        let mut again = RotatingLog::open(&path, rotation).unwrap();
        for i in 50..60 {
            again.write_record(&record(i)).unwrap();
        }
        let numbers: Vec<u64> = rotated_files(&path).iter().map(|(n, _)| *n).collect();
        assert!(numbers[0] > rotated[1].0, "{numbers:?}");
        remove_log(&path);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_record_longer_than_the_size_gets_a_file_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let rotation = LogRotation {
            max_size: 10,
            max_files: 5,
        };
        let mut log = RotatingLog::open(&path, rotation).unwrap();
        log.write_record(&record(1)).unwrap();
        log.write_record(&record(2)).unwrap();
        assert_eq!(fs::read(&path).unwrap(), record(2));
        assert_eq!(fs::read(rotated_path(&path, 1)).unwrap(), record(1));
    }
}
