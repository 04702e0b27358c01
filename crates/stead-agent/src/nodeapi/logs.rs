//! Container logs in the CRI file format, read back the way `kubectl logs` asks for them.
//!
//! Each line of a log file is `<RFC3339Nano time> <stdout|stderr> <P|F> <content>`: `P` marks a
//! partial line (the runtime split a long line), `F` the end of one. Reading joins partials,
//! then applies the options in upstream's order: `since` drops older lines, `tail` keeps the
//! last lines, `timestamps` prefixes each line with its time, `limit_bytes` cuts the output.

use jiff::Timestamp;

/// The query options of `GET pods/<name>/log` that shape the output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<u64>,
    pub since: Option<Timestamp>,
    pub limit_bytes: Option<u64>,
}

impl LogOptions {
    /// Parses the query string upstream's kubelet takes (`follow`, `previous`, `timestamps`,
    /// `tailLines`, `sinceSeconds`, `sinceTime`, `limitBytes`), relative to `now`.
    pub fn parse(query: &str, now: Timestamp) -> Result<LogOptions, String> {
        let mut o = LogOptions::default();
        for (k, v) in form_pairs(query) {
            let flag = || matches!(v.as_str(), "true" | "1" | "");
            let number = || {
                v.parse::<i64>()
                    .map_err(|_| format!("invalid value {v:?} for {k}"))
            };
            match k.as_str() {
                "follow" => o.follow = flag(),
                "previous" => o.previous = flag(),
                "timestamps" => o.timestamps = flag(),
                "tailLines" => {
                    let n = number()?;
                    if n < 0 {
                        return Err(
                            "tailLines: Invalid value: must be greater than or equal to 0".into(),
                        );
                    }
                    o.tail_lines = Some(n as u64);
                }
                "limitBytes" => {
                    let n = number()?;
                    if n < 1 {
                        return Err("limitBytes: Invalid value: must be greater than 0".into());
                    }
                    o.limit_bytes = Some(n as u64);
                }
                "sinceSeconds" => {
                    let n = number()?;
                    if n < 1 {
                        return Err("sinceSeconds: Invalid value: must be greater than 0".into());
                    }
                    o.since = now.checked_sub(jiff::SignedDuration::from_secs(n)).ok();
                }
                "sinceTime" => {
                    o.since = Some(
                        v.parse::<Timestamp>()
                            .map_err(|_| format!("invalid value {v:?} for sinceTime"))?,
                    );
                }
                _ => {}
            }
        }
        Ok(o)
    }
}

/// Splits `a=b&c=d` into decoded pairs.
pub(crate) fn form_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One whole log line: its time (of its last part) and content without the newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub time: Timestamp,
    pub content: Vec<u8>,
}

/// Joins CRI records into whole lines. Feed it bytes as they are read; it keeps an unfinished
/// record or partial line until the rest arrives.
#[derive(Debug, Default)]
pub struct LineReader {
    pending: Vec<u8>,
    partial: Vec<u8>,
}

impl LineReader {
    /// Parses every complete record in `bytes` (plus what was pending) and returns the whole
    /// lines they finish. Malformed records are skipped.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<LogLine> {
        self.pending.extend_from_slice(bytes);
        let mut lines = Vec::new();
        let mut start = 0;
        while let Some(nl) = self.pending[start..].iter().position(|b| *b == b'\n') {
            let record = &self.pending[start..start + nl];
            start += nl + 1;
            let Some((time, tag, content)) = parse_record(record) else {
                continue;
            };
            self.partial.extend_from_slice(content);
            if tag == b'F' {
                lines.push(LogLine {
                    time,
                    content: std::mem::take(&mut self.partial),
                });
            }
        }
        self.pending.drain(..start);
        lines
    }
}

/// `<time> <stream> <tag> <content>` → (time, tag, content).
fn parse_record(record: &[u8]) -> Option<(Timestamp, u8, &[u8])> {
    let mut parts = record.splitn(4, |b| *b == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let _stream = parts.next()?;
    let tag = *parts.next()?.first()?;
    Some((time, tag, parts.next().unwrap_or(b"")))
}

/// Renders `lines` per the options (not `follow`, which is the caller's loop): since, tail,
/// timestamps. The byte limit is applied by the caller over the whole stream ([`Limit`]).
pub fn render(lines: Vec<LogLine>, opts: &LogOptions) -> Vec<u8> {
    let mut kept: Vec<LogLine> = lines
        .into_iter()
        .filter(|l| opts.since.is_none_or(|s| l.time >= s))
        .collect();
    if let Some(n) = opts.tail_lines {
        let skip = kept.len().saturating_sub(n as usize);
        kept.drain(..skip);
    }
    let mut out = Vec::new();
    for l in kept {
        render_line(&l, opts, &mut out);
    }
    out
}

/// Appends one line (with its timestamp when asked) to `out`.
pub fn render_line(line: &LogLine, opts: &LogOptions, out: &mut Vec<u8>) {
    if opts.since.is_some_and(|s| line.time < s) {
        return;
    }
    if opts.timestamps {
        // RFC 3339 with the fraction's trailing zeros trimmed, as Go's RFC3339Nano.
        out.extend_from_slice(line.time.to_string().as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(&line.content);
    out.push(b'\n');
}

/// What is left of `limitBytes`.
#[derive(Debug, Clone, Copy)]
pub struct Limit(pub Option<u64>);

impl Limit {
    /// Cuts `chunk` to what the limit still allows; `None` once it is used up.
    pub fn take(&mut self, mut chunk: Vec<u8>) -> Option<Vec<u8>> {
        match &mut self.0 {
            None => Some(chunk),
            Some(0) => None,
            Some(left) => {
                if chunk.len() as u64 > *left {
                    chunk.truncate(*left as usize);
                }
                *left -= chunk.len() as u64;
                Some(chunk)
            }
        }
    }

    pub fn exhausted(&self) -> bool {
        self.0 == Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const FILE: &[u8] = b"2026-01-01T00:00:01.000000001Z stdout F one\n\
2026-01-01T00:00:02Z stderr P tw\n\
2026-01-01T00:00:02.5Z stderr F o\n\
garbage\n\
2026-01-01T00:00:03Z stdout F \n\
2026-01-01T00:00:04Z stdout F four";

    #[test]
    fn partial_records_join_and_an_unfinished_record_waits() {
        let mut r = LineReader::default();
        let lines = r.push(FILE);
        let text: Vec<&[u8]> = lines.iter().map(|l| l.content.as_slice()).collect();
        assert_eq!(text, vec![&b"one"[..], b"two", b""]);
        assert_eq!(lines[1].time, ts("2026-01-01T00:00:02.5Z"));
        // The last record has no newline yet: it arrives with the next read.
        let more = r.push(b"\n");
        assert_eq!(more.len(), 1);
        assert_eq!(more[0].content, b"four");
    }

    #[test]
    fn since_tail_and_timestamps_shape_the_output() {
        let mut r = LineReader::default();
        let mut lines = r.push(FILE);
        lines.extend(r.push(b"\n"));
        let all = render(lines.clone(), &LogOptions::default());
        assert_eq!(all, b"one\ntwo\n\nfour\n");
        let tail = render(
            lines.clone(),
            &LogOptions {
                tail_lines: Some(2),
                ..Default::default()
            },
        );
        assert_eq!(tail, b"\nfour\n");
        let since = render(
            lines.clone(),
            &LogOptions {
                since: Some(ts("2026-01-01T00:00:02.5Z")),
                timestamps: true,
                tail_lines: Some(0),
                ..Default::default()
            },
        );
        assert_eq!(since, b"");
        let since = render(
            lines,
            &LogOptions {
                since: Some(ts("2026-01-01T00:00:03Z")),
                timestamps: true,
                ..Default::default()
            },
        );
        assert_eq!(
            String::from_utf8(since).unwrap(),
            "2026-01-01T00:00:03Z \n2026-01-01T00:00:04Z four\n"
        );
    }

    #[test]
    fn options_parse_like_the_log_query() {
        let now = ts("2026-01-01T01:00:00Z");
        let o = LogOptions::parse(
            "follow=true&tailLines=2&timestamps=true&sinceSeconds=3600&limitBytes=10&container=c",
            now,
        )
        .unwrap();
        assert!(o.follow && o.timestamps && !o.previous);
        assert_eq!(o.tail_lines, Some(2));
        assert_eq!(o.limit_bytes, Some(10));
        assert_eq!(o.since, Some(ts("2026-01-01T00:00:00Z")));
        let o = LogOptions::parse("sinceTime=2026-01-01T00%3A30%3A00Z&previous=true", now).unwrap();
        assert_eq!(o.since, Some(ts("2026-01-01T00:30:00Z")));
        assert!(o.previous);
        assert!(LogOptions::parse("tailLines=-1", now).is_err());
        assert!(LogOptions::parse("limitBytes=x", now).is_err());
    }

    #[test]
    fn the_byte_limit_cuts_across_chunks() {
        let mut l = Limit(Some(5));
        assert_eq!(l.take(b"abc".to_vec()), Some(b"abc".to_vec()));
        assert_eq!(l.take(b"defg".to_vec()), Some(b"de".to_vec()));
        assert!(l.exhausted());
        assert_eq!(l.take(b"h".to_vec()), None);
        assert_eq!(Limit(None).take(b"x".to_vec()), Some(b"x".to_vec()));
    }
}
