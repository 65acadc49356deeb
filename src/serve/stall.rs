//! A connection whose writes make no progress is closed: a client that stops reading
//! would otherwise hold its response (a whole `/metrics` body) for as long as it keeps the
//! connection open. hyper has a limit for reading request headers but none for writing;
//! this wrapper around the connection's stream gives it one.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// A write (or flush) that has waited this long without a byte going out fails, and the
/// connection is closed.
pub(crate) const WRITE_STALL_LIMIT: Duration = Duration::from_secs(10);

/// `inner`, whose writes fail once they have been pending for `limit` with no progress.
pub(crate) struct StallLimit<S> {
    inner: S,
    limit: Duration,
    /// Set when a write first waits; cleared by any progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> StallLimit<S> {
    pub(crate) fn new(inner: S, limit: Duration) -> Self {
        StallLimit {
            inner,
            limit,
            stalled: None,
        }
    }

    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let limit = self.limit;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {limit:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for StallLimit<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallLimit<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, polled)
    }

    /// Said as the stream says: hyper queues large bodies without copying them only on a
    /// stream that writes vectored.
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, polled)
    }

    /// Watched too: over TLS, shutting down writes a close_notify, which a client that
    /// reads nothing would hold up like any other write.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_write_that_makes_no_progress_fails_after_the_limit() {
        // A pipe of 64 bytes that nobody reads.
        let (writer, _reader) = tokio::io::duplex(64);
        let mut stream = StallLimit::new(writer, Duration::from_secs(10));
        let started = tokio::time::Instant::now();
        let error = stream.write_all(&[7u8; 4096]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    /// A stream whose shutdown never completes (a TLS close_notify nobody reads).
    struct NeverShutsDown;

    impl AsyncWrite for NeverShutsDown {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    /// Review finding (issue 19): a shutdown that made no progress was not watched.
    #[tokio::test(start_paused = true)]
    async fn a_shutdown_that_makes_no_progress_fails_after_the_limit() {
        let mut stream = StallLimit::new(NeverShutsDown, Duration::from_secs(10));
        let started = tokio::time::Instant::now();
        let shutdown = tokio::time::timeout(Duration::from_secs(20), stream.shutdown());
        let error = shutdown.await.expect("ended by the limit").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_is_served() {
        use tokio::io::AsyncReadExt;
        let (writer, mut reader) = tokio::io::duplex(64);
        let mut stream = StallLimit::new(writer, Duration::from_secs(10));
        let reading = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut chunk = [0u8; 64];
            while got.len() < 4096 {
                // 64 bytes every 5 s: slow, never stalled for the limit.
                tokio::time::sleep(Duration::from_secs(5)).await;
                let n = reader.read(&mut chunk).await.unwrap();
                got.extend_from_slice(&chunk[..n]);
            }
            got.len()
        });
        stream.write_all(&[7u8; 4096]).await.unwrap();
        assert_eq!(reading.await.unwrap(), 4096);
    }
}
