//! A server-side SPDY/3.1 session over any byte transport: the peer opens streams (the
//! Kubernetes clients always do; this side never opens any), each accepted stream is answered
//! with SYN_REPLY and handed out as a [`Stream`], whose halves read and write data frames.
//!
//! Flow control: data read from a stream is acknowledged with WINDOW_UPDATEs for the stream
//! and the session as it is consumed. Sending honours the peer's windows (64 KiB per stream
//! and per session to start, SETTINGS may change the stream default) once the peer shows it
//! does flow control, by sending a WINDOW_UPDATE or that SETTINGS entry. Kubernetes' SPDY
//! library (moby/spdystream, used by kubectl and the kubelet) never sends either and ignores
//! ours, so enforcing windows against it from the start would stall every stream at 64 KiB.
//! What arrives is buffered a few frames deep per stream; beyond that the session stops
//! reading from the transport until the stream's reader catches up.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc, watch};

use super::frame::{
    CANCEL, Decoder, Encoder, FLAG_FIN, Frame, Headers, INVALID_STREAM, PROTOCOL_ERROR,
    SETTINGS_INITIAL_WINDOW_SIZE,
};

/// The window both sides start with, per stream and for the session.
const DEFAULT_WINDOW: i64 = 64 * 1024;
/// The largest data frame sent.
const MAX_DATA: usize = 16 * 1024;
/// Data frames buffered per stream before the session stops reading.
const STREAM_BUFFER: usize = 16;

struct Flow {
    /// Set once the peer sent a WINDOW_UPDATE or an initial window setting.
    enforced: bool,
    session: i64,
    initial: i64,
    /// Send windows of the streams open for sending; absent once reset or finished.
    streams: HashMap<u32, i64>,
    closed: bool,
}

struct Shared {
    out: mpsc::Sender<Out>,
    flow: Mutex<Flow>,
    changed: Notify,
}

enum Out {
    Frame(Frame),
    Close,
}

impl Shared {
    async fn send(&self, frame: Frame) -> io::Result<()> {
        self.out
            .send(Out::Frame(frame))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }

    fn flow(&self) -> std::sync::MutexGuard<'_, Flow> {
        self.flow.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `want` bytes (or part of them) may go out on `stream`; returns how many.
    async fn reserve(&self, stream: u32, want: usize) -> io::Result<usize> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut flow = self.flow();
                if flow.closed {
                    return Err(io::ErrorKind::BrokenPipe.into());
                }
                let Some(&window) = flow.streams.get(&stream) else {
                    return Err(io::Error::new(io::ErrorKind::BrokenPipe, "stream reset"));
                };
                if !flow.enforced {
                    return Ok(want);
                }
                let room = window.min(flow.session);
                if room > 0 {
                    let n = want.min(room as usize);
                    flow.session -= n as i64;
                    *flow.streams.get_mut(&stream).expect("checked") -= n as i64;
                    return Ok(n);
                }
            }
            changed.await;
        }
    }
}

/// One SPDY session; [`Session::accept`] yields the streams the peer opens.
pub struct Session {
    streams: mpsc::Receiver<Stream>,
    shared: Arc<Shared>,
    ended: watch::Receiver<bool>,
}

/// A stream the peer opened: its headers and its two directions.
pub struct Stream {
    pub id: u32,
    pub headers: Headers,
    pub incoming: Incoming,
    pub outgoing: Outgoing,
}

impl Stream {
    /// The first value of header `name` (names are lower case on the wire).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The data the peer sends on one stream.
pub struct Incoming {
    id: u32,
    rx: mpsc::Receiver<Vec<u8>>,
    shared: Arc<Shared>,
}

impl Incoming {
    /// The next chunk; `None` once the peer finished or reset the stream or the session ended.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        let data = self.rx.recv().await?;
        let delta = data.len() as u32;
        if delta > 0 {
            for stream in [self.id, 0] {
                let _ = self
                    .shared
                    .send(Frame::WindowUpdate { stream, delta })
                    .await;
            }
        }
        Some(data)
    }
}

/// Sends data on one stream; clones share the stream.
#[derive(Clone)]
pub struct Outgoing {
    id: u32,
    shared: Arc<Shared>,
}

impl Outgoing {
    /// Sends all of `data`, waiting for window where the peer does flow control.
    pub async fn write(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = self
                .shared
                .reserve(self.id, data.len().min(MAX_DATA))
                .await?;
            self.shared
                .send(Frame::Data {
                    stream: self.id,
                    flags: 0,
                    data: data[..n].to_vec(),
                })
                .await?;
            data = &data[n..];
        }
        Ok(())
    }

    /// Ends this side of the stream (FLAG_FIN); later writes fail.
    pub async fn finish(&self) {
        let removed = self.shared.flow().streams.remove(&self.id).is_some();
        self.shared.changed.notify_waiters();
        if removed {
            let _ = self
                .shared
                .send(Frame::Data {
                    stream: self.id,
                    flags: FLAG_FIN,
                    data: Vec::new(),
                })
                .await;
        }
    }

    /// Resolves once nothing more can be sent: the peer reset the stream, this side finished
    /// it, or the session ended.
    pub async fn stopped(&self) {
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let flow = self.shared.flow();
                if flow.closed || !flow.streams.contains_key(&self.id) {
                    return;
                }
            }
            changed.await;
        }
    }

    /// Abandons the stream (RST_STREAM with CANCEL).
    pub async fn reset(&self) {
        self.shared.flow().streams.remove(&self.id);
        self.shared.changed.notify_waiters();
        let _ = self
            .shared
            .send(Frame::RstStream {
                stream: self.id,
                status: CANCEL,
            })
            .await;
    }
}

impl Session {
    /// Starts a session on `io` (after the HTTP upgrade): spawns its reader and writer.
    pub fn start<T>(io: T) -> Session
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (reader, writer) = tokio::io::split(io);
        let (out_tx, out_rx) = mpsc::channel(64);
        let shared = Arc::new(Shared {
            out: out_tx,
            flow: Mutex::new(Flow {
                enforced: false,
                session: DEFAULT_WINDOW,
                initial: DEFAULT_WINDOW,
                streams: HashMap::new(),
                closed: false,
            }),
            changed: Notify::new(),
        });
        let (streams_tx, streams_rx) = mpsc::channel(16);
        let (ended_tx, ended_rx) = watch::channel(false);
        tokio::spawn(write_loop(writer, out_rx, ended_rx.clone()));
        tokio::spawn(read_loop(reader, shared.clone(), streams_tx, ended_tx));
        Session {
            streams: streams_rx,
            shared,
            ended: ended_rx,
        }
    }

    /// The next stream the peer opens; `None` once the session ended.
    pub async fn accept(&mut self) -> Option<Stream> {
        self.streams.recv().await
    }

    /// Resolves when the peer closed the transport (or it failed).
    pub async fn ended(&self) {
        let mut ended = self.ended.clone();
        let _ = ended.wait_for(|e| *e).await;
    }

    /// Says GOAWAY, sends what is queued and closes the transport.
    pub async fn close(&self) {
        let _ = self
            .shared
            .send(Frame::GoAway {
                last_stream: 0,
                status: 0,
            })
            .await;
        let _ = self.shared.out.send(Out::Close).await;
    }
}

async fn write_loop<W: AsyncWrite>(
    writer: W,
    mut out: mpsc::Receiver<Out>,
    mut ended: watch::Receiver<bool>,
) {
    tokio::pin!(writer);
    let mut encoder = Encoder::default();
    let mut buf = Vec::new();
    loop {
        let next = tokio::select! {
            next = out.recv() => next,
            _ = ended.wait_for(|e| *e) => None,
        };
        let Some(Out::Frame(frame)) = next else {
            break;
        };
        buf.clear();
        encoder.encode(&frame, &mut buf);
        // Batch what is already queued into one write.
        let mut close = false;
        while buf.len() < 64 * 1024 {
            match out.try_recv() {
                Ok(Out::Frame(f)) => encoder.encode(&f, &mut buf),
                Ok(Out::Close) => {
                    close = true;
                    break;
                }
                Err(_) => break,
            }
        }
        if writer.write_all(&buf).await.is_err() || writer.flush().await.is_err() || close {
            break;
        }
    }
    let _ = writer.shutdown().await;
}

async fn read_loop<R: AsyncRead>(
    reader: R,
    shared: Arc<Shared>,
    streams: mpsc::Sender<Stream>,
    ended: watch::Sender<bool>,
) {
    tokio::pin!(reader);
    let mut decoder = Decoder::default();
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 32 * 1024];
    let mut incoming: HashMap<u32, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut last_stream = 0u32;
    'read: loop {
        loop {
            let (frame, used) = match decoder.decode(&buf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "spdy: closing the session");
                    let _ = shared
                        .send(Frame::GoAway {
                            last_stream,
                            status: PROTOCOL_ERROR,
                        })
                        .await;
                    break 'read;
                }
            };
            buf.drain(..used);
            let reply = |f: Frame| shared.send(f);
            match frame {
                Frame::SynStream {
                    stream,
                    flags,
                    headers,
                    ..
                } => {
                    // Peers open odd streams, each new one above the last.
                    if stream % 2 == 0 || stream <= last_stream {
                        let _ = reply(Frame::RstStream {
                            stream,
                            status: PROTOCOL_ERROR,
                        })
                        .await;
                        continue;
                    }
                    last_stream = stream;
                    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
                    if flags & FLAG_FIN == 0 {
                        incoming.insert(stream, tx);
                    }
                    {
                        let mut flow = shared.flow();
                        let initial = flow.initial;
                        flow.streams.insert(stream, initial);
                    }
                    let _ = reply(Frame::SynReply {
                        stream,
                        flags: 0,
                        headers: Vec::new(),
                    })
                    .await;
                    let s = Stream {
                        id: stream,
                        headers,
                        incoming: Incoming {
                            id: stream,
                            rx,
                            shared: shared.clone(),
                        },
                        outgoing: Outgoing {
                            id: stream,
                            shared: shared.clone(),
                        },
                    };
                    if streams.send(s).await.is_err() {
                        // Nobody accepts streams any more.
                        incoming.remove(&stream);
                        shared.flow().streams.remove(&stream);
                        let _ = reply(Frame::RstStream {
                            stream,
                            status: CANCEL,
                        })
                        .await;
                    }
                }
                Frame::Data {
                    stream,
                    flags,
                    data,
                } => {
                    let Some(tx) = incoming.get(&stream) else {
                        if stream > last_stream {
                            let _ = reply(Frame::RstStream {
                                stream,
                                status: INVALID_STREAM,
                            })
                            .await;
                        }
                        continue;
                    };
                    if !data.is_empty() && tx.send(data).await.is_err() {
                        incoming.remove(&stream);
                    }
                    if flags & FLAG_FIN != 0 {
                        incoming.remove(&stream);
                    }
                }
                Frame::Headers { stream, flags, .. } => {
                    if flags & FLAG_FIN != 0 {
                        incoming.remove(&stream);
                    }
                }
                Frame::RstStream { stream, .. } => {
                    incoming.remove(&stream);
                    shared.flow().streams.remove(&stream);
                    shared.changed.notify_waiters();
                }
                Frame::Settings(entries) => {
                    let mut flow = shared.flow();
                    for (_, id, value) in entries {
                        if id == SETTINGS_INITIAL_WINDOW_SIZE {
                            let delta = i64::from(value) - flow.initial;
                            flow.initial = i64::from(value);
                            flow.enforced = true;
                            for w in flow.streams.values_mut() {
                                *w += delta;
                            }
                        }
                    }
                    drop(flow);
                    shared.changed.notify_waiters();
                }
                Frame::WindowUpdate { stream, delta } => {
                    let mut flow = shared.flow();
                    flow.enforced = true;
                    if stream == 0 {
                        flow.session += i64::from(delta);
                    } else if let Some(w) = flow.streams.get_mut(&stream) {
                        *w += i64::from(delta);
                    }
                    drop(flow);
                    shared.changed.notify_waiters();
                }
                Frame::Ping(id) => {
                    let _ = reply(Frame::Ping(id)).await;
                }
                // The peer opens no more streams; those open carry on.
                Frame::GoAway { .. } | Frame::SynReply { .. } | Frame::Unknown(_) => {}
            }
        }
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    drop(incoming);
    shared.flow().closed = true;
    shared.changed.notify_waiters();
    let _ = ended.send(true);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{DuplexStream, ReadHalf, WriteHalf};

    /// The client side of a session under test, speaking frames.
    struct Peer {
        r: ReadHalf<DuplexStream>,
        w: WriteHalf<DuplexStream>,
        enc: Encoder,
        dec: Decoder,
        buf: Vec<u8>,
    }

    impl Peer {
        async fn send(&mut self, f: Frame) {
            let mut out = Vec::new();
            self.enc.encode(&f, &mut out);
            self.w.write_all(&out).await.unwrap();
        }

        async fn next(&mut self) -> Frame {
            loop {
                if let Some((f, used)) = self.dec.decode(&self.buf).unwrap() {
                    self.buf.drain(..used);
                    return f;
                }
                let mut chunk = [0u8; 4096];
                let n = self.r.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the session closed");
                self.buf.extend_from_slice(&chunk[..n]);
            }
        }

        async fn data(&mut self) -> (u8, Vec<u8>) {
            match self.next().await {
                Frame::Data { flags, data, .. } => (flags, data),
                other => panic!("expected data, got {other:?}"),
            }
        }
    }

    fn start() -> (Session, Peer) {
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        let (r, w) = tokio::io::split(theirs);
        let peer = Peer {
            r,
            w,
            enc: Encoder::default(),
            dec: Decoder::default(),
            buf: Vec::new(),
        };
        (Session::start(ours), peer)
    }

    fn syn(stream: u32) -> Frame {
        Frame::SynStream {
            stream,
            associated: 0,
            priority: 0,
            flags: 0,
            headers: vec![("streamType".into(), "data".into())],
        }
    }

    #[tokio::test]
    async fn streams_are_replied_read_with_window_updates_and_finished() {
        let (mut session, mut peer) = start();
        peer.send(syn(1)).await;
        peer.send(Frame::Data {
            stream: 1,
            flags: FLAG_FIN,
            data: b"ping".to_vec(),
        })
        .await;
        let mut s = session.accept().await.unwrap();
        assert_eq!((s.id, s.header("streamtype")), (1, Some("data")));
        assert_eq!(s.incoming.recv().await.unwrap(), b"ping");
        assert_eq!(s.incoming.recv().await, None);
        assert!(matches!(
            peer.next().await,
            Frame::SynReply { stream: 1, .. }
        ));
        for stream in [1, 0] {
            assert_eq!(peer.next().await, Frame::WindowUpdate { stream, delta: 4 });
        }
        peer.send(Frame::Ping(9)).await;
        assert_eq!(peer.next().await, Frame::Ping(9));
        // A peer without flow control gets everything at once, in frames of at most 16 KiB.
        s.outgoing.write(&[7u8; 40_000]).await.unwrap();
        let mut got = 0;
        while got < 40_000 {
            let (_, d) = peer.data().await;
            assert!(d.len() <= MAX_DATA);
            got += d.len();
        }
        s.outgoing.finish().await;
        assert_eq!(peer.data().await, (FLAG_FIN, Vec::new()));
        assert!(s.outgoing.write(b"late").await.is_err());
        // Even stream ids belong to the server: refused.
        peer.send(syn(2)).await;
        assert_eq!(
            peer.next().await,
            Frame::RstStream {
                stream: 2,
                status: PROTOCOL_ERROR
            }
        );
    }

    #[tokio::test]
    async fn sending_honours_the_windows_of_a_peer_that_does_flow_control() {
        let (mut session, mut peer) = start();
        peer.send(syn(1)).await;
        let s = session.accept().await.unwrap();
        assert!(matches!(peer.next().await, Frame::SynReply { .. }));
        peer.send(Frame::Settings(vec![(0, SETTINGS_INITIAL_WINDOW_SIZE, 10)]))
            .await;
        // The setting is applied before anything is written (frames are handled in order).
        peer.send(Frame::Ping(1)).await;
        assert_eq!(peer.next().await, Frame::Ping(1));
        let out = s.outgoing.clone();
        let writer = tokio::spawn(async move { out.write(&[1u8; 25]).await });
        assert_eq!(peer.data().await.1.len(), 10);
        peer.send(Frame::WindowUpdate {
            stream: 1,
            delta: 5,
        })
        .await;
        assert_eq!(peer.data().await.1.len(), 5);
        peer.send(Frame::WindowUpdate {
            stream: 1,
            delta: 100,
        })
        .await;
        assert_eq!(peer.data().await.1.len(), 10);
        writer.await.unwrap().unwrap();
        // A reset stream takes no more data.
        peer.send(Frame::RstStream {
            stream: 1,
            status: CANCEL,
        })
        .await;
        peer.send(Frame::Ping(3)).await;
        assert_eq!(peer.next().await, Frame::Ping(3));
        s.outgoing.stopped().await;
        assert!(s.outgoing.write(b"x").await.is_err());
        // The session ends with the transport.
        drop(peer);
        session.ended().await;
        assert!(session.accept().await.is_none());
    }
}
