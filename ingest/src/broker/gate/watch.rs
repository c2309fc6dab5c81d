//! Watches what the broker sends back on a gated connection, to tell when the client is past
//! its CONNECT: the broker's first MQTT bytes (the CONNACK, accepting or refusing). Over
//! WebSocket the HTTP upgrade response comes first; MQTT starts after its blank line.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the broker speaks before MQTT on this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preamble {
    /// MQTT from the first byte.
    None,
    /// An HTTP response head (WebSocket upgrade) ends with `\r\n\r\n`; MQTT follows.
    HttpHead,
}

const HEAD_END: &[u8; 4] = b"\r\n\r\n";

/// Scans the broker's bytes; `seen_mqtt` turns true at the first byte of MQTT.
#[derive(Debug)]
pub struct Scanner {
    in_head: bool,
    /// How many bytes of `HEAD_END` the stream has matched so far.
    matched: usize,
    seen_mqtt: Arc<AtomicBool>,
}

impl Scanner {
    pub fn new(preamble: Preamble) -> Scanner {
        Scanner {
            in_head: preamble == Preamble::HttpHead,
            matched: 0,
            seen_mqtt: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A handle that reads the flag.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.seen_mqtt.clone()
    }

    /// Looks at the next bytes the broker sent.
    pub fn feed(&mut self, bytes: &[u8]) {
        if bytes.is_empty() || self.seen_mqtt.load(Ordering::Relaxed) {
            return;
        }
        if !self.in_head {
            self.seen_mqtt.store(true, Ordering::Relaxed);
            return;
        }
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
                if i + 1 < bytes.len() {
                    self.seen_mqtt.store(true, Ordering::Relaxed);
                }
                return;
            }
        }
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
            this.scanner.feed(&buf.filled()[before..]);
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
    use super::*;

    fn seen(s: &Scanner) -> bool {
        s.flag().load(Ordering::Relaxed)
    }

    #[test]
    fn plain_mqtt_is_seen_at_the_first_byte() {
        let mut s = Scanner::new(Preamble::None);
        s.feed(&[]);
        assert!(!seen(&s));
        s.feed(&[0x20]);
        assert!(seen(&s));
    }

    #[test]
    fn websocket_mqtt_starts_after_the_http_head() {
        let mut s = Scanner::new(Preamble::HttpHead);
        s.feed(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n");
        assert!(!seen(&s));
        s.feed(b"Sec-WebSocket-Accept: x\r\n\r\n");
        assert!(!seen(&s), "the head alone is not MQTT");
        s.feed(&[0x82, 0x04, 0x20, 0x02, 0x00, 0x00]);
        assert!(seen(&s));
    }

    #[test]
    fn head_end_split_across_reads_and_mqtt_in_the_same_read() {
        let mut s = Scanner::new(Preamble::HttpHead);
        s.feed(b"HTTP/1.1 101 OK\r\n\r");
        s.feed(b"\n");
        assert!(!seen(&s));
        let mut s = Scanner::new(Preamble::HttpHead);
        s.feed(b"HTTP/1.1 101 OK\r\nX: \r\r\n\r\n\x82");
        assert!(seen(&s), "\\r\\r\\n\\r\\n still ends the head");
    }

    #[test]
    fn a_head_that_never_ends_is_never_mqtt() {
        let mut s = Scanner::new(Preamble::HttpHead);
        for _ in 0..1000 {
            s.feed(b"X-Long: \r\n");
        }
        assert!(!seen(&s));
    }
}
