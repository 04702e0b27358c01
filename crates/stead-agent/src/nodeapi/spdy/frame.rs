//! SPDY/3.1 frames as bytes: parsing and writing, with the header blocks compressed by zlib
//! with the SPDY/3 dictionary. Each direction of a session keeps one zlib context for all its
//! header blocks ([`Decoder`] for what arrives, [`Encoder`] for what goes out); every block ends
//! with a sync flush so the peer can read it on its own.
//!
//! Frame layout (all big-endian): a control frame starts with `1` bit, 15-bit version (3),
//! 16-bit type, 8-bit flags, 24-bit length; a data frame with `0` bit, 31-bit stream id, 8-bit
//! flags, 24-bit length. A header block is a count then length-prefixed name/value pairs
//! (32-bit numbers; several values of one name are joined with NUL).

use std::sync::LazyLock;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

pub const VERSION: u16 = 3;
/// `FLAG_FIN` of data frames, SYN_STREAM, SYN_REPLY and HEADERS.
pub const FLAG_FIN: u8 = 0x01;
/// The largest frame body this reader accepts (the field allows 16 MiB; Kubernetes clients
/// send at most 32 KiB at a time).
const MAX_LENGTH: usize = 4 << 20;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// RST_STREAM status codes used here.
pub const PROTOCOL_ERROR: u32 = 1;
pub const INVALID_STREAM: u32 = 2;
pub const CANCEL: u32 = 5;

/// SETTINGS id of the initial per-stream window.
pub const SETTINGS_INITIAL_WINDOW_SIZE: u32 = 7;

pub type Headers = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream: u32,
        associated: u32,
        priority: u8,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        stream: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        stream: u32,
        status: u32,
    },
    /// `(flags, id, value)` entries.
    Settings(Vec<(u8, u32, u32)>),
    Ping(u32),
    GoAway {
        last_stream: u32,
        status: u32,
    },
    Headers {
        stream: u32,
        flags: u8,
        headers: Headers,
    },
    WindowUpdate {
        stream: u32,
        delta: u32,
    },
    Data {
        stream: u32,
        flags: u8,
        data: Vec<u8>,
    },
    /// A control frame of a type this implementation does not know (ignored, as the spec says).
    Unknown(u16),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("SPDY: unsupported version {0}")]
    Version(u16),
    #[error("SPDY: frame of {0} bytes is too large")]
    TooLarge(usize),
    #[error("SPDY: malformed {0} frame")]
    Malformed(&'static str),
    #[error("SPDY: header block: {0}")]
    Compression(String),
}

/// The SPDY/3 header compression dictionary (SPDY/3 draft §2.6.10.1): length-prefixed common
/// header names and values, then a run of status codes, dates and media types.
pub static DICTIONARY: LazyLock<Vec<u8>> = LazyLock::new(|| {
    const WORDS: &[&str] = &[
        "options",
        "head",
        "post",
        "put",
        "delete",
        "trace",
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "accept-ranges",
        "age",
        "allow",
        "authorization",
        "cache-control",
        "connection",
        "content-base",
        "content-encoding",
        "content-language",
        "content-length",
        "content-location",
        "content-md5",
        "content-range",
        "content-type",
        "date",
        "etag",
        "expect",
        "expires",
        "from",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "last-modified",
        "location",
        "max-forwards",
        "pragma",
        "proxy-authenticate",
        "proxy-authorization",
        "range",
        "referer",
        "retry-after",
        "server",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "vary",
        "via",
        "warning",
        "www-authenticate",
        "method",
        "get",
        "status",
        "200 OK",
        "version",
        "HTTP/1.1",
        "url",
        "public",
        "set-cookie",
        "keep-alive",
        "origin",
    ];
    const TAIL: &str = concat!(
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417",
        "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently",
        "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error",
        "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct ",
        "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,",
        "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,",
        "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8",
        "charset=iso-8859-1,utf-,*,enq=0.",
    );
    let mut d = Vec::with_capacity(1423);
    for w in WORDS {
        d.extend_from_slice(&(w.len() as u32).to_be_bytes());
        d.extend_from_slice(w.as_bytes());
    }
    d.extend_from_slice(TAIL.as_bytes());
    d
});

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses the frames arriving on one session (owns the inbound header decompressor).
pub struct Decoder {
    inflate: Decompress,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            inflate: Decompress::new(true),
        }
    }
}

impl Decoder {
    /// Parses the first frame of `buf`: `None` while it is incomplete, else the frame and the
    /// number of bytes it took.
    pub fn decode(&mut self, buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let length = (u32_at(buf, 4) & 0x00ff_ffff) as usize;
        if length > MAX_LENGTH {
            return Err(FrameError::TooLarge(length));
        }
        if buf.len() < 8 + length {
            return Ok(None);
        }
        let flags = buf[4];
        let body = &buf[8..8 + length];
        let first = u32_at(buf, 0);
        let frame = if first & 0x8000_0000 == 0 {
            Frame::Data {
                stream: first & 0x7fff_ffff,
                flags,
                data: body.to_vec(),
            }
        } else {
            let version = ((first >> 16) & 0x7fff) as u16;
            if version != VERSION {
                return Err(FrameError::Version(version));
            }
            self.control((first & 0xffff) as u16, flags, body)?
        };
        Ok(Some((frame, 8 + length)))
    }

    fn control(&mut self, kind: u16, flags: u8, body: &[u8]) -> Result<Frame, FrameError> {
        let need = |n: usize, name: &'static str| {
            if body.len() < n {
                Err(FrameError::Malformed(name))
            } else {
                Ok(())
            }
        };
        Ok(match kind {
            SYN_STREAM => {
                need(10, "SYN_STREAM")?;
                Frame::SynStream {
                    stream: u32_at(body, 0) & 0x7fff_ffff,
                    associated: u32_at(body, 4) & 0x7fff_ffff,
                    priority: body[8] >> 5,
                    flags,
                    headers: self.headers(&body[10..])?,
                }
            }
            SYN_REPLY | HEADERS => {
                need(4, "SYN_REPLY")?;
                let stream = u32_at(body, 0) & 0x7fff_ffff;
                let headers = self.headers(&body[4..])?;
                if kind == SYN_REPLY {
                    Frame::SynReply {
                        stream,
                        flags,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream,
                        flags,
                        headers,
                    }
                }
            }
            RST_STREAM => {
                need(8, "RST_STREAM")?;
                Frame::RstStream {
                    stream: u32_at(body, 0) & 0x7fff_ffff,
                    status: u32_at(body, 4),
                }
            }
            SETTINGS => {
                need(4, "SETTINGS")?;
                let n = u32_at(body, 0) as usize;
                need(4 + n.saturating_mul(8), "SETTINGS")?;
                Frame::Settings(
                    (0..n)
                        .map(|i| {
                            let at = 4 + i * 8;
                            (
                                body[at],
                                u32_at(body, at) & 0x00ff_ffff,
                                u32_at(body, at + 4),
                            )
                        })
                        .collect(),
                )
            }
            PING => {
                need(4, "PING")?;
                Frame::Ping(u32_at(body, 0))
            }
            GOAWAY => {
                need(8, "GOAWAY")?;
                Frame::GoAway {
                    last_stream: u32_at(body, 0) & 0x7fff_ffff,
                    status: u32_at(body, 4),
                }
            }
            WINDOW_UPDATE => {
                need(8, "WINDOW_UPDATE")?;
                Frame::WindowUpdate {
                    stream: u32_at(body, 0) & 0x7fff_ffff,
                    delta: u32_at(body, 4) & 0x7fff_ffff,
                }
            }
            other => Frame::Unknown(other),
        })
    }

    /// Inflates one header block (the whole of it: blocks end with a sync flush) and parses it.
    fn headers(&mut self, block: &[u8]) -> Result<Headers, FrameError> {
        let raw = self.inflate_block(block)?;
        parse_header_block(&raw)
    }

    fn inflate_block(&mut self, block: &[u8]) -> Result<Vec<u8>, FrameError> {
        let fail = |e: String| FrameError::Compression(e);
        let mut out = Vec::with_capacity(block.len() * 4 + 64);
        let mut input = block;
        loop {
            if out.capacity() - out.len() < 256 {
                out.reserve(out.capacity().max(1024));
            }
            let before = self.inflate.total_in();
            let result = self
                .inflate
                .decompress_vec(input, &mut out, FlushDecompress::Sync);
            let used = (self.inflate.total_in() - before) as usize;
            input = &input[used..];
            match result {
                Ok(Status::StreamEnd) => break,
                Ok(_) => {
                    // Done once all input is read and the output had room to spare.
                    if input.is_empty() && out.capacity() > out.len() {
                        break;
                    }
                }
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(&DICTIONARY)
                        .map_err(|e| fail(e.to_string()))?;
                }
                Err(e) => return Err(fail(e.to_string())),
            }
        }
        Ok(out)
    }
}

/// Parses an uncompressed header block; names are lower case, NUL-joined values are split.
pub fn parse_header_block(raw: &[u8]) -> Result<Headers, FrameError> {
    let bad = || FrameError::Malformed("header block");
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8], FrameError> {
        let s = raw
            .get(at..at.checked_add(n).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        at += n;
        Ok(s)
    };
    let count = u32::from_be_bytes(take(4)?.try_into().map_err(|_| bad())?) as usize;
    let mut headers = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let n = u32::from_be_bytes(take(4)?.try_into().map_err(|_| bad())?) as usize;
        let name = String::from_utf8_lossy(take(n)?).to_ascii_lowercase();
        let n = u32::from_be_bytes(take(4)?.try_into().map_err(|_| bad())?) as usize;
        let value = String::from_utf8_lossy(take(n)?).into_owned();
        for v in value.split('\0') {
            headers.push((name.clone(), v.to_string()));
        }
    }
    Ok(headers)
}

/// Writes frames going out on one session (owns the outbound header compressor).
pub struct Encoder {
    deflate: Compress,
}

impl Default for Encoder {
    fn default() -> Self {
        let mut deflate = Compress::new(Compression::default(), true);
        deflate
            .set_dictionary(&DICTIONARY)
            .expect("a fresh zlib stream takes a dictionary");
        Encoder { deflate }
    }
}

impl Encoder {
    /// Appends the bytes of `frame` to `out`.
    pub fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) {
        match frame {
            Frame::Data {
                stream,
                flags,
                data,
            } => {
                out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
                out.extend_from_slice(&length_word(*flags, data.len()));
                out.extend_from_slice(data);
            }
            Frame::SynStream {
                stream,
                associated,
                priority,
                flags,
                headers,
            } => {
                let mut body = Vec::new();
                body.extend_from_slice(&stream.to_be_bytes());
                body.extend_from_slice(&associated.to_be_bytes());
                body.extend_from_slice(&[priority << 5, 0]);
                self.deflate_block(headers, &mut body);
                control(SYN_STREAM, *flags, &body, out);
            }
            Frame::SynReply {
                stream,
                flags,
                headers,
            }
            | Frame::Headers {
                stream,
                flags,
                headers,
            } => {
                let kind = if matches!(frame, Frame::SynReply { .. }) {
                    SYN_REPLY
                } else {
                    HEADERS
                };
                let mut body = stream.to_be_bytes().to_vec();
                self.deflate_block(headers, &mut body);
                control(kind, *flags, &body, out);
            }
            Frame::RstStream { stream, status } => {
                control(RST_STREAM, 0, &pair(*stream, *status), out);
            }
            Frame::Settings(entries) => {
                let mut body = (entries.len() as u32).to_be_bytes().to_vec();
                for (flags, id, value) in entries {
                    body.extend_from_slice(&((u32::from(*flags) << 24) | id).to_be_bytes());
                    body.extend_from_slice(&value.to_be_bytes());
                }
                control(SETTINGS, 0, &body, out);
            }
            Frame::Ping(id) => control(PING, 0, &id.to_be_bytes(), out),
            Frame::GoAway {
                last_stream,
                status,
            } => control(GOAWAY, 0, &pair(*last_stream, *status), out),
            Frame::WindowUpdate { stream, delta } => {
                control(WINDOW_UPDATE, 0, &pair(*stream, *delta), out);
            }
            Frame::Unknown(_) => {}
        }
    }

    fn deflate_block(&mut self, headers: &Headers, out: &mut Vec<u8>) {
        // Values of one name travel together, NUL-joined.
        let mut grouped: Vec<(String, Vec<&str>)> = Vec::new();
        for (name, value) in headers {
            let name = name.to_ascii_lowercase();
            match grouped.iter_mut().find(|(n, _)| *n == name) {
                Some((_, values)) => values.push(value),
                None => grouped.push((name, vec![value])),
            }
        }
        let mut raw = (grouped.len() as u32).to_be_bytes().to_vec();
        for (name, values) in &grouped {
            let value = values.join("\0");
            raw.extend_from_slice(&(name.len() as u32).to_be_bytes());
            raw.extend_from_slice(name.as_bytes());
            raw.extend_from_slice(&(value.len() as u32).to_be_bytes());
            raw.extend_from_slice(value.as_bytes());
        }
        let mut input = &raw[..];
        loop {
            out.reserve(input.len() + 64);
            let before = self.deflate.total_in();
            self.deflate
                .compress_vec(input, out, FlushCompress::Sync)
                .expect("deflate into a growing buffer");
            input = &input[(self.deflate.total_in() - before) as usize..];
            // A sync flush is complete once all input is taken and the output had room left.
            if input.is_empty() && out.capacity() > out.len() {
                break;
            }
        }
    }
}

fn length_word(flags: u8, length: usize) -> [u8; 4] {
    ((u32::from(flags) << 24) | (length as u32 & 0x00ff_ffff)).to_be_bytes()
}

fn pair(a: u32, b: u32) -> [u8; 8] {
    let mut v = [0u8; 8];
    v[..4].copy_from_slice(&a.to_be_bytes());
    v[4..].copy_from_slice(&b.to_be_bytes());
    v
}

fn control(kind: u16, flags: u8, body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(0x8000u16 | VERSION).to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&length_word(flags, body.len()));
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The first frame kubectl 1.32 sent for `kubectl port-forward` (capture `exec1`).
    const CAPTURED_SYN_STREAM: &str = "800300010000003d0000000100000000000078f9e3c6a7c202253a70\
        3a2b294a4dcc851625aca9a0808614cb45a024cc6461c0c0c0c0590489c44c50e2663400000000ffff";

    #[test]
    fn the_dictionary_is_the_one_peers_name() {
        // A zlib stream names its preset dictionary by Adler-32; kubectl's is e3c6a7c2.
        assert_eq!(DICTIONARY.len(), 1423);
        let mut c = Compress::new(Compression::default(), true);
        assert_eq!(c.set_dictionary(&DICTIONARY).ok(), Some(0xe3c6_a7c2));
    }

    #[test]
    fn a_captured_syn_stream_from_kubectl_decodes() {
        let bytes = hex(CAPTURED_SYN_STREAM);
        let mut d = Decoder::default();
        assert_eq!(d.decode(&bytes[..20]).unwrap(), None);
        let (frame, used) = d.decode(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        let Frame::SynStream {
            stream, headers, ..
        } = frame
        else {
            panic!("{frame:?}");
        };
        assert_eq!(stream, 1);
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("streamtype"), Some("error"));
        assert!(
            get("port").is_some_and(|p| p.parse::<u16>().is_ok()),
            "{headers:?}"
        );
        assert_eq!(get("requestid"), Some("0"));
    }

    #[test]
    fn frames_round_trip_with_one_compression_context_per_direction() {
        let frames = vec![
            Frame::SynStream {
                stream: 1,
                associated: 0,
                priority: 2,
                flags: 0,
                headers: vec![
                    ("streamtype".into(), "data".into()),
                    ("port".into(), "8080".into()),
                ],
            },
            Frame::SynReply {
                stream: 1,
                flags: 0,
                headers: vec![],
            },
            // The same headers again: the shared context makes this block shorter.
            Frame::SynStream {
                stream: 3,
                associated: 0,
                priority: 0,
                flags: FLAG_FIN,
                headers: vec![
                    ("streamtype".into(), "data".into()),
                    ("port".into(), "8080".into()),
                    ("x".into(), "a".into()),
                    ("x".into(), "b".into()),
                ],
            },
            Frame::Data {
                stream: 3,
                flags: FLAG_FIN,
                data: b"hello".to_vec(),
            },
            Frame::RstStream {
                stream: 5,
                status: CANCEL,
            },
            Frame::Settings(vec![(0, SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20)]),
            Frame::Ping(7),
            Frame::GoAway {
                last_stream: 3,
                status: 0,
            },
            Frame::WindowUpdate {
                stream: 0,
                delta: 4096,
            },
            Frame::Headers {
                stream: 1,
                flags: 0,
                headers: vec![("a".into(), "b".into())],
            },
        ];
        let mut enc = Encoder::default();
        let mut wire = Vec::new();
        let mut sizes = Vec::new();
        for f in &frames {
            let before = wire.len();
            enc.encode(f, &mut wire);
            sizes.push(wire.len() - before);
        }
        assert!(sizes[2] < sizes[0] + 12, "{sizes:?}");
        let mut dec = Decoder::default();
        let mut at = 0;
        let mut got = Vec::new();
        // Fed a byte at a time, the decoder waits for whole frames.
        let mut end = 0;
        while at < wire.len() {
            end = (end + 1).min(wire.len());
            if let Some((f, used)) = dec.decode(&wire[at..end]).unwrap() {
                got.push(f);
                at += used;
            }
        }
        assert_eq!(got, frames);
    }

    #[test]
    fn a_wrong_version_or_oversized_frame_is_an_error() {
        let mut d = Decoder::default();
        let spdy2 = [0x80, 0x02, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1];
        assert_eq!(d.decode(&spdy2), Err(FrameError::Version(2)));
        let huge = [0, 0, 0, 1, 0, 0xff, 0xff, 0xff];
        assert!(matches!(d.decode(&huge), Err(FrameError::TooLarge(_))));
    }
}
