//! One HTTP connection's read deadlines: an idle keep-alive connection
//! may wait [`Config::keep_alive_idle`](crate::config::Config) for its
//! next request, but once a request's first byte has arrived its headers
//! must be complete within [`limits::HEADER_READ_TIMEOUT`] (a slowloris
//! guard).
//!
//! hyper has one timer for both: its header-read timeout starts when the
//! connection waits for a request head, idle or not. So hyper's is set to
//! the idle limit, and [`HeadDeadline`] wraps the socket to cut a request
//! whose head is slow: the first byte read outside a request arms it,
//! [`Watch::request_started`] (the service saw a whole head) disarms it.
//! A request's body has its own limit in the handler, and an upgraded
//! (WebSocket) connection has none here.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// What the connection's service tells its socket wrapper.
#[derive(Debug, Default)]
pub struct Watch {
    /// Requests whose head was complete (the service was called).
    started: AtomicU64,
    /// Requests answered.
    finished: AtomicU64,
    /// The connection switched protocols: no head deadline any more.
    upgraded: AtomicBool,
}

impl Watch {
    /// A request's head is complete (call before handling it).
    pub fn request_started(&self) {
        self.started.fetch_add(1, Ordering::AcqRel);
    }

    /// A request was answered with `status`; a 101 ends head deadlines.
    pub fn request_finished(&self, status: u16) {
        if status == 101 {
            self.upgraded.store(true, Ordering::Release);
        }
        self.finished.fetch_add(1, Ordering::AcqRel);
    }
}

/// A socket whose request heads must arrive within a limit once begun.
pub struct HeadDeadline<T> {
    io: T,
    watch: Arc<Watch>,
    limit: Duration,
    /// The deadline's timer, allocated once and reset per request.
    sleep: Pin<Box<Sleep>>,
    /// The count of started requests when the deadline was armed; `None`
    /// when no deadline runs.
    armed_at: Option<u64>,
}

impl<T> HeadDeadline<T> {
    /// Wraps `io`; `watch` is shared with the connection's service.
    pub fn new(io: T, watch: Arc<Watch>, limit: Duration) -> HeadDeadline<T> {
        HeadDeadline {
            io,
            watch,
            limit,
            sleep: Box::pin(tokio::time::sleep(limit)),
            armed_at: None,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for HeadDeadline<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let started = this.watch.started.load(Ordering::Acquire);
        let idle = started == this.watch.finished.load(Ordering::Acquire)
            && !this.watch.upgraded.load(Ordering::Acquire);
        // A head completed since the deadline was armed, or a request is
        // being handled (its body has the handler's own limit).
        if !idle || this.armed_at.is_some_and(|at| at != started) {
            this.armed_at = None;
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if idle && this.armed_at.is_none() && buf.filled().len() > before {
                    this.armed_at = Some(started);
                    this.sleep.as_mut().reset(Instant::now() + this.limit);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                if this.armed_at.is_some() && this.sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "request headers did not arrive in time",
                    )));
                }
                Poll::Pending
            }
            ready => ready,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for HeadDeadline<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn pair(
        limit: Duration,
    ) -> (
        HeadDeadline<tokio::io::DuplexStream>,
        tokio::io::DuplexStream,
        Arc<Watch>,
    ) {
        let (server, client) = tokio::io::duplex(1024);
        let watch = Arc::new(Watch::default());
        (
            HeadDeadline::new(server, Arc::clone(&watch), limit),
            client,
            watch,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_has_no_head_deadline() {
        let (mut io, mut client, _watch) = pair(Duration::from_secs(5));
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(3600), io.read(&mut buf)).await;
        assert!(read.is_err(), "still waiting after an hour idle");
        client.write_all(b"GET").await.unwrap();
        assert_eq!(io.read(&mut buf).await.unwrap(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_begun_head_must_finish_within_the_limit() {
        let (mut io, mut client, _watch) = pair(Duration::from_secs(5));
        client.write_all(b"GET / HT").await.unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(io.read(&mut buf).await.unwrap(), 8);
        let started = Instant::now();
        let err = io.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_complete_head_and_an_answered_request_disarm_it() {
        let (mut io, mut client, watch) = pair(Duration::from_secs(5));
        let mut buf = [0u8; 16];
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        assert_eq!(io.read(&mut buf).await.unwrap(), 16);
        watch.request_started();
        // The body and the handler may take longer than the head limit.
        tokio::time::sleep(Duration::from_secs(8)).await;
        client.write_all(b"body").await.unwrap();
        assert_eq!(io.read(&mut buf).await.unwrap(), 4);
        watch.request_finished(200);
        // Idle between requests: no deadline, however long.
        let read = tokio::time::timeout(Duration::from_secs(60), io.read(&mut buf)).await;
        assert!(read.is_err());
        // The next request's head is timed again.
        client.write_all(b"GET").await.unwrap();
        assert_eq!(io.read(&mut buf).await.unwrap(), 3);
        let err = io.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    // hyper reads the socket again while a request is handled, which
    // disarms the deadline on its own; a reader that does not, and sees a
    // whole request answered between two reads, must still find it ended.
    #[tokio::test(start_paused = true)]
    async fn a_request_answered_between_two_reads_disarms_it() {
        let (mut io, mut client, watch) = pair(Duration::from_secs(5));
        let mut buf = [0u8; 64];
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        assert_eq!(io.read(&mut buf).await.unwrap(), 18);
        watch.request_started();
        watch.request_finished(200);
        let read = tokio::time::timeout(Duration::from_secs(60), io.read(&mut buf)).await;
        assert!(read.is_err(), "an idle connection, timed out: {read:?}");
    }

    // The wrapper only times reads: writes, flushes, shutdowns and the
    // vectored-write hint are the socket's own. (Every tokio stream says
    // yes to vectored writes, the TCP socket included, so only a "no"
    // could show here.)
    #[tokio::test]
    async fn writes_flushes_and_shutdowns_reach_the_socket() {
        let (server, mut client) = tokio::io::duplex(1024);
        let buffered = tokio::io::BufWriter::new(server);
        assert!(buffered.is_write_vectored());
        let watch = Arc::new(Watch::default());
        let mut io = HeadDeadline::new(buffered, watch, Duration::from_secs(5));
        assert!(io.is_write_vectored());
        let wait = Duration::from_secs(5);
        // A buffered write arrives only once flushed.
        io.write_all(b"abc").await.unwrap();
        let mut buf = [0u8; 8];
        let early = tokio::time::timeout(Duration::from_millis(50), client.read(&mut buf)).await;
        assert!(early.is_err(), "arrived before the flush: {early:?}");
        io.flush().await.unwrap();
        let flushed = tokio::time::timeout(wait, client.read(&mut buf)).await;
        assert_eq!(flushed.expect("flushed").unwrap(), 3);
        let parts = [io::IoSlice::new(b"de"), io::IoSlice::new(b"f")];
        let n = io.write_vectored(&parts).await.unwrap();
        // The shutdown flushes what is buffered, then ends the stream.
        io.shutdown().await.unwrap();
        let mut rest = Vec::new();
        let eof = tokio::time::timeout(wait, client.read_to_end(&mut rest)).await;
        assert!(eof.is_ok(), "no end of stream after the shutdown");
        assert_eq!(Some(&rest[..]), b"def".get(..n));
    }

    #[tokio::test(start_paused = true)]
    async fn an_upgraded_connection_has_no_head_deadline() {
        let (mut io, mut client, watch) = pair(Duration::from_secs(5));
        let mut buf = [0u8; 16];
        watch.request_started();
        watch.request_finished(101);
        client.write_all(b"frame").await.unwrap();
        assert_eq!(io.read(&mut buf).await.unwrap(), 5);
        let read = tokio::time::timeout(Duration::from_secs(60), io.read(&mut buf)).await;
        assert!(read.is_err(), "no deadline after the upgrade");
    }
}
