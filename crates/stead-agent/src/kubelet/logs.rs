//! Container logs for `kubectl logs`: the CRI log format (`<RFC3339Nano> <stdout|stderr> <F|P>
//! <content>`, one line per record, `P` for a partial line continued by the next record) parsed
//! purely ([`parse_line`], [`render`]), and [`read_log`] / [`follow_log`] over the files at
//! [`log_path`](super::config::log_path).

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;

use super::config::log_path;

/// One record of a CRI log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub time: Timestamp,
    pub stream: String,
    /// `false` for a `P` record: the line continues in the next record.
    pub full: bool,
    pub content: String,
}

/// `kubectl logs` options (the pod log subresource's query).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub follow: bool,
    /// Only the last this many lines.
    pub tail: Option<usize>,
    /// Only records at or after this time (`sinceSeconds` / `sinceTime`).
    pub since: Option<Timestamp>,
    /// Prefix each line with its RFC 3339 timestamp.
    pub timestamps: bool,
    /// The previous attempt's log instead of the current one.
    pub previous: bool,
    /// Stop after this many bytes.
    pub limit_bytes: Option<usize>,
}

/// Parses one record; `None` for a malformed line.
pub fn parse_line(line: &str) -> Option<Record> {
    let mut parts = line.splitn(4, ' ');
    let time: Timestamp = parts.next()?.parse().ok()?;
    let stream = parts.next()?.to_string();
    let tag = parts.next()?;
    let content = parts.next().unwrap_or("").to_string();
    Some(Record {
        time,
        stream,
        full: !tag.starts_with('P'),
        content,
    })
}

/// Joins records into lines (partials glued), applying `since`, `tail`, `timestamps` and
/// `limit_bytes`.
pub fn render(text: &str, opts: &LogOptions) -> Vec<u8> {
    let mut lines: Vec<(Timestamp, String)> = vec![];
    let mut pending: Option<(Timestamp, String)> = None;
    for rec in text.lines().filter_map(parse_line) {
        let (t, mut acc) = pending.take().unwrap_or((rec.time, String::new()));
        acc.push_str(&rec.content);
        if rec.full {
            lines.push((t, acc));
        } else {
            pending = Some((t, acc));
        }
    }
    if let Some(p) = pending {
        lines.push(p);
    }
    if let Some(since) = opts.since {
        lines.retain(|(t, _)| *t >= since);
    }
    if let Some(n) = opts.tail {
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    let mut out = vec![];
    for (t, line) in lines {
        if opts.timestamps {
            out.extend_from_slice(t.strftime("%Y-%m-%dT%H:%M:%S%.9fZ ").to_string().as_bytes());
        }
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    if let Some(limit) = opts.limit_bytes {
        out.truncate(limit);
    }
    out
}

/// The log file of the container's current attempt (or the previous one).
pub fn attempt_path(
    data_dir: &Path,
    ns: &str,
    pod: &str,
    uid: &str,
    container: &str,
    current_attempt: u32,
    previous: bool,
) -> Option<PathBuf> {
    let attempt = if previous {
        current_attempt.checked_sub(1)?
    } else {
        current_attempt
    };
    Some(log_path(data_dir, ns, pod, uid, container, attempt))
}

/// Reads and renders a whole log file (not following).
pub fn read_log(path: &Path, opts: &LogOptions) -> std::io::Result<Vec<u8>> {
    let text = std::fs::read_to_string(path)?;
    Ok(render(&text, opts))
}

/// Renders the file, then keeps sending what is appended (polled every 200 ms) to `sink` until
/// `sink` is closed.
pub async fn follow_log(
    path: PathBuf,
    opts: LogOptions,
    sink: tokio::sync::mpsc::Sender<Vec<u8>>,
) -> std::io::Result<()> {
    let text = tokio::fs::read_to_string(&path).await?;
    let cut = text.rfind('\n').map_or(0, |i| i + 1);
    let mut offset = cut;
    if sink.send(render(&text[..cut], &opts)).await.is_err() {
        return Ok(());
    }
    let follow_opts = LogOptions {
        tail: None,
        since: None,
        limit_bytes: None,
        ..opts
    };
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if sink.is_closed() {
            return Ok(());
        }
        let text = tokio::fs::read_to_string(&path).await?;
        if text.len() < offset {
            offset = 0;
        }
        let fresh = &text[offset..];
        let Some(end) = fresh.rfind('\n') else {
            continue;
        };
        let chunk = render(&fresh[..=end], &follow_opts);
        offset += end + 1;
        if !chunk.is_empty() && sink.send(chunk).await.is_err() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "2026-11-22T10:00:00.000000001Z stdout F hello\n\
2026-11-22T10:00:01.5Z stderr P par\n\
2026-11-22T10:00:01.6Z stderr F tial\n\
garbage\n\
2026-11-22T10:00:03Z stdout F bye\n";

    #[test]
    fn records_parse_with_stream_and_partial_tag() {
        let r = parse_line("2026-11-22T10:00:01.5Z stderr P par").unwrap();
        assert_eq!(r.stream, "stderr");
        assert!(!r.full);
        assert_eq!(r.content, "par");
        assert_eq!(parse_line("not a log line"), None);
        assert_eq!(
            parse_line("2026-11-22T10:00:00Z stdout F ")
                .unwrap()
                .content,
            ""
        );
    }

    #[test]
    fn partial_records_join_into_one_line() {
        assert_eq!(
            render(LOG, &LogOptions::default()),
            b"hello\npartial\nbye\n"
        );
    }

    #[test]
    fn tail_since_timestamps_and_limit_apply() {
        let tail = LogOptions {
            tail: Some(2),
            ..LogOptions::default()
        };
        assert_eq!(render(LOG, &tail), b"partial\nbye\n");
        let since = LogOptions {
            since: Some("2026-11-22T10:00:02Z".parse().unwrap()),
            ..LogOptions::default()
        };
        assert_eq!(render(LOG, &since), b"bye\n");
        let ts = LogOptions {
            timestamps: true,
            tail: Some(1),
            ..LogOptions::default()
        };
        assert_eq!(render(LOG, &ts), b"2026-11-22T10:00:03.000000000Z bye\n");
        let limit = LogOptions {
            limit_bytes: Some(3),
            ..LogOptions::default()
        };
        assert_eq!(render(LOG, &limit), b"hel");
    }

    #[test]
    fn previous_reads_the_attempt_before() {
        let d = Path::new("/data");
        assert_eq!(
            attempt_path(d, "ns", "p", "u", "c", 2, true).unwrap(),
            PathBuf::from("/data/pods/u/logs/c/1.log")
        );
        assert_eq!(attempt_path(d, "ns", "p", "u", "c", 0, true), None);
    }

    #[test]
    fn a_log_file_is_read_and_rendered() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        std::fs::write(&p, LOG).unwrap();
        assert_eq!(
            read_log(&p, &LogOptions::default()).unwrap(),
            b"hello\npartial\nbye\n"
        );
    }
}
