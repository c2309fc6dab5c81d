//! Watches what the broker sends back on a gated connection, to tell when the client is past
//! its CONNECT: the broker's first MQTT bytes (the CONNACK, accepting or refusing). Over
//! WebSocket the HTTP upgrade response comes first; MQTT starts after its blank line, inside a
//! WebSocket frame. When the CONNACK refuses with "not authorized" and the authentication hook
//! noted a refusal for load (see `refusal`), its reason code is replaced in place.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::refusal::Refusals;

/// What the broker speaks before MQTT on this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preamble {
    /// MQTT from the first byte.
    None,
    /// An HTTP response head (WebSocket upgrade) ends with `\r\n\r\n`; MQTT follows, framed.
    HttpHead,
}

const HEAD_END: &[u8; 4] = b"\r\n\r\n";
/// MQTT CONNACK packet type byte.
const CONNACK: u8 = 0x20;
/// Bytes kept from the start of the broker's MQTT (WebSocket frame header included): enough
/// to reach a CONNACK's reason code.
const START_BYTES: usize = 24;

/// Where the CONNACK's reason code is, as far as the bytes seen so far tell.
enum Locate {
    /// Not enough bytes yet.
    More,
    /// The newest byte is the reason code, of MQTT 5 (`true`) or 3.1.1.
    Reason(bool),
    /// Not a CONNACK at the start: nothing to do.
    Stop,
}

/// Scans the broker's bytes; `seen_mqtt` turns true at the first byte after the preamble.
#[derive(Debug)]
pub struct Scanner {
    in_head: bool,
    /// How many bytes of `HEAD_END` the stream has matched so far.
    matched: usize,
    /// MQTT comes inside WebSocket frames.
    framed: bool,
    seen_mqtt: Arc<AtomicBool>,
    /// The first bytes after the preamble.
    start: [u8; START_BYTES],
    start_len: usize,
    /// The reason code was handled (or the stream does not start with a CONNACK).
    done: bool,
    /// Where load refusals are noted, and this client's address.
    refusals: Option<(Arc<Refusals>, SocketAddr)>,
}

impl Scanner {
    pub fn new(preamble: Preamble) -> Scanner {
        Scanner {
            in_head: preamble == Preamble::HttpHead,
            matched: 0,
            framed: preamble == Preamble::HttpHead,
            seen_mqtt: Arc::new(AtomicBool::new(false)),
            start: [0; START_BYTES],
            start_len: 0,
            done: false,
            refusals: None,
        }
    }

    /// Rewrites a "not authorized" CONNACK to the client at `peer` when `refusals` holds a
    /// load refusal for it.
    pub fn with_refusals(mut self, refusals: Arc<Refusals>, peer: SocketAddr) -> Scanner {
        self.refusals = Some((refusals, peer));
        self
    }

    /// A handle that reads the flag.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.seen_mqtt.clone()
    }

    /// Looks at the next bytes the broker sent (and may change a CONNACK's reason code).
    pub fn feed(&mut self, bytes: &mut [u8]) {
        if bytes.is_empty() || self.done {
            return;
        }
        let mut from = 0;
        if self.in_head {
            match self.end_of_head(bytes) {
                Some(i) => from = i,
                None => return,
            }
        }
        for b in bytes[from..].iter_mut() {
            self.seen_mqtt.store(true, Ordering::Relaxed);
            if self.start_len == START_BYTES {
                self.done = true;
                return;
            }
            self.start[self.start_len] = *b;
            self.start_len += 1;
            match self.locate() {
                Locate::More => {}
                Locate::Stop => {
                    self.done = true;
                    return;
                }
                Locate::Reason(v5) => {
                    if let Some(code) = self.rewrite(v5, *b) {
                        *b = code;
                    }
                    self.done = true;
                    return;
                }
            }
        }
    }

    /// Index just past the end of the HTTP head in `bytes`, once it ended there.
    fn end_of_head(&mut self, bytes: &[u8]) -> Option<usize> {
        for (i, b) in bytes.iter().enumerate() {
            self.matched = if *b == HEAD_END[self.matched] {
                self.matched + 1
            } else if *b == HEAD_END[0] {
                1
            } else {
                0
            };
            if self.matched == HEAD_END.len() {
                self.in_head = false;
                return Some(i + 1);
            }
        }
        None
    }

    fn locate(&self) -> Locate {
        let seen = &self.start[..self.start_len];
        let newest = self.start_len - 1;
        let mut at = 0;
        if self.framed {
            // WebSocket frame header: 2 bytes, then 2 or 8 of extended length, then 4 of mask.
            if seen.len() < 2 {
                return Locate::More;
            }
            let extended = match seen[1] & 0x7F {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            let mask = if seen[1] & 0x80 != 0 { 4 } else { 0 };
            at = 2 + extended + mask;
            if mask != 0 {
                // A server never masks; leave such a stream alone.
                return Locate::Stop;
            }
        }
        if seen.len() <= at {
            return Locate::More;
        }
        if seen[at] != CONNACK {
            return Locate::Stop;
        }
        // Remaining length: a variable byte integer of at most 4 bytes.
        let mut value = 0usize;
        let mut len = 0;
        loop {
            let Some(b) = seen.get(at + 1 + len) else {
                return Locate::More;
            };
            value |= usize::from(b & 0x7F) << (7 * len);
            len += 1;
            if b & 0x80 == 0 {
                break;
            }
            if len == 4 {
                return Locate::Stop;
            }
        }
        // Flags, then the reason code.
        let reason = at + 1 + len + 1;
        match newest.cmp(&reason) {
            std::cmp::Ordering::Less => Locate::More,
            std::cmp::Ordering::Equal => Locate::Reason(value != 2),
            std::cmp::Ordering::Greater => Locate::Stop,
        }
    }

    fn rewrite(&self, v5: bool, code: u8) -> Option<u8> {
        let (refusals, peer) = self.refusals.as_ref()?;
        refusals.replacement(*peer, v5, code)
    }
}

/// The connection to the broker, with a scanner on what is read from it.
pub struct Watched<S> {
    inner: S,
    scanner: Scanner,
}

impl<S> Watched<S> {
    pub fn new(inner: S, scanner: Scanner) -> Watched<S> {
        Watched { inner, scanner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = res {
            this.scanner.feed(&mut buf.filled_mut()[before..]);
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::super::refusal::LoadRefusal;
    use super::*;

    fn seen(s: &Scanner) -> bool {
        s.flag().load(Ordering::Relaxed)
    }

    fn feed(s: &mut Scanner, bytes: &[u8]) -> Vec<u8> {
        let mut b = bytes.to_vec();
        s.feed(&mut b);
        b
    }

    #[test]
    fn plain_mqtt_is_seen_at_the_first_byte() {
        let mut s = Scanner::new(Preamble::None);
        feed(&mut s, &[]);
        assert!(!seen(&s));
        feed(&mut s, &[0x20]);
        assert!(seen(&s));
    }

    #[test]
    fn websocket_mqtt_starts_after_the_http_head() {
        let mut s = Scanner::new(Preamble::HttpHead);
        feed(
            &mut s,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n",
        );
        assert!(!seen(&s));
        feed(&mut s, b"Sec-WebSocket-Accept: x\r\n\r\n");
        assert!(!seen(&s), "the head alone is not MQTT");
        feed(&mut s, &[0x82, 0x04, 0x20, 0x02, 0x00, 0x00]);
        assert!(seen(&s));
    }

    #[test]
    fn head_end_split_across_reads_and_mqtt_in_the_same_read() {
        let mut s = Scanner::new(Preamble::HttpHead);
        feed(&mut s, b"HTTP/1.1 101 OK\r\n\r");
        feed(&mut s, b"\n");
        assert!(!seen(&s));
        let mut s = Scanner::new(Preamble::HttpHead);
        feed(&mut s, b"HTTP/1.1 101 OK\r\nX: \r\r\n\r\n\x82");
        assert!(seen(&s), "\\r\\r\\n\\r\\n still ends the head");
    }

    #[test]
    fn a_head_that_never_ends_is_never_mqtt() {
        let mut s = Scanner::new(Preamble::HttpHead);
        for _ in 0..1000 {
            feed(&mut s, b"X-Long: \r\n");
        }
        assert!(!seen(&s));
    }

    fn peer() -> SocketAddr {
        "192.0.2.7:40000".parse().unwrap()
    }

    fn noted(why: LoadRefusal) -> (Arc<Refusals>, Scanner, Scanner) {
        let r = Arc::new(Refusals::new());
        r.note(peer(), why);
        let plain = Scanner::new(Preamble::None).with_refusals(r.clone(), peer());
        let ws = Scanner::new(Preamble::HttpHead).with_refusals(r.clone(), peer());
        (r, plain, ws)
    }

    #[test]
    fn a_v3_not_authorized_for_load_becomes_server_unavailable() {
        let (r, mut s, _) = noted(LoadRefusal::Busy);
        assert_eq!(
            feed(&mut s, &[0x20, 0x02, 0x00, 0x05]),
            [0x20, 0x02, 0x00, 0x03]
        );
        assert!(r.is_empty(), "the note is used up");
    }

    #[test]
    fn a_v5_refusal_gets_its_load_code_even_split_across_reads() {
        let (_, mut s, _) = noted(LoadRefusal::RateExceeded);
        assert_eq!(feed(&mut s, &[0x20, 0x03]), [0x20, 0x03]);
        assert_eq!(feed(&mut s, &[0x00]), [0x00]);
        assert_eq!(feed(&mut s, &[0x87, 0x00]), [0x9F, 0x00]);
    }

    #[test]
    fn over_websocket_the_frame_header_is_skipped() {
        let (_, _, mut s) = noted(LoadRefusal::Busy);
        feed(&mut s, b"HTTP/1.1 101 OK\r\n\r\n");
        let out = feed(&mut s, &[0x82, 0x05, 0x20, 0x03, 0x00, 0x87, 0x00]);
        assert_eq!(out, [0x82, 0x05, 0x20, 0x03, 0x00, 0x89, 0x00]);
    }

    #[test]
    fn nothing_changes_without_a_note_or_for_other_codes() {
        let r = Arc::new(Refusals::new());
        let mut s = Scanner::new(Preamble::None).with_refusals(r.clone(), peer());
        assert_eq!(
            feed(&mut s, &[0x20, 0x02, 0x00, 0x05]),
            [0x20, 0x02, 0x00, 0x05]
        );
        r.note(peer(), LoadRefusal::Busy);
        let mut s = Scanner::new(Preamble::None).with_refusals(r.clone(), peer());
        assert_eq!(
            feed(&mut s, &[0x20, 0x02, 0x00, 0x04]),
            [0x20, 0x02, 0x00, 0x04],
            "bad credentials are never rewritten"
        );
        let mut s = Scanner::new(Preamble::None).with_refusals(r.clone(), peer());
        // A later PUBLISH that happens to carry 0x05 at that offset is not a CONNACK.
        assert_eq!(
            feed(&mut s, &[0x30, 0x02, 0x00, 0x05]),
            [0x30, 0x02, 0x00, 0x05]
        );
        let mut s = Scanner::new(Preamble::None).with_refusals(r, peer());
        feed(&mut s, &[0x20, 0x02, 0x00, 0x00]);
        assert_eq!(
            feed(&mut s, &[0x20, 0x02, 0x00, 0x05]),
            [0x20, 0x02, 0x00, 0x05],
            "only the first packet"
        );
    }
}
