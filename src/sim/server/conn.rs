//! The simulator's connections: a TCP listener handing out streams that a request handler
//! can kill, so a dropped-connection fault resets the socket instead of answering. It knows
//! nothing of HTTP, routes or faults; the pipeline decides when to kill (`super`).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Handed to every request of a connection: `kill()` makes the connection fail instead of
/// sending the response.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnHandle {
    killed: Arc<AtomicBool>,
}

impl ConnHandle {
    pub(super) fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
    }
}

/// A TCP stream that fails every operation (and resets the socket) once killed.
pub(crate) struct KillableIo {
    inner: TcpStream,
    handle: ConnHandle,
}

impl KillableIo {
    fn check(&self) -> io::Result<()> {
        if self.handle.killed.load(Ordering::SeqCst) {
            // RST instead of FIN: the client sees a reset connection, never a response.
            let _ = self.inner.set_zero_linger();
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "simulated dropped connection",
            ));
        }
        Ok(())
    }
}

impl AsyncRead for KillableIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The listener: a TCP listener handing out [`KillableIo`] connections.
pub(crate) struct SimListener(pub TcpListener);

impl axum::serve::Listener for SimListener {
    type Io = KillableIo;
    type Addr = ConnHandle;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((inner, _)) => {
                    let _ = inner.set_nodelay(true);
                    let handle = ConnHandle::default();
                    return (
                        KillableIo {
                            inner,
                            handle: handle.clone(),
                        },
                        handle,
                    );
                }
                Err(e) => {
                    tracing::debug!("sim: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(ConnHandle::default())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, SimListener>>
    for ConnHandle
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, SimListener>) -> Self {
        stream.remote_addr().clone()
    }
}
