//! The shutdown signal, injected everywhere a run can be interrupted (DESIGN §1 step 4).
//! In the binary it fires on SIGINT, SIGTERM or SIGHUP (the runner sends SIGINT, then
//! SIGTERM 7.5 s later; some runners send SIGHUP); in tests it is fired by hand. It owns the
//! OS signal handlers and nothing else.

use tokio::sync::watch;

/// A cloneable "stop now" signal.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<Option<&'static str>>,
}

/// Fires a [`Shutdown`] by hand.
#[derive(Debug, Clone)]
pub struct Trigger {
    tx: std::sync::Arc<watch::Sender<Option<&'static str>>>,
}

impl Trigger {
    /// Fire the signal with a reason (`"SIGTERM"`, `"test"`, …). Idempotent.
    pub fn fire(&self, reason: &'static str) {
        self.tx.send_if_modified(|v| {
            if v.is_none() {
                *v = Some(reason);
                true
            } else {
                false
            }
        });
    }
}

impl Shutdown {
    /// A signal and the trigger that fires it.
    pub fn manual() -> (Trigger, Shutdown) {
        let (tx, rx) = watch::channel(None);
        (
            Trigger {
                tx: std::sync::Arc::new(tx),
            },
            Shutdown { rx },
        )
    }

    /// A signal that never fires.
    pub fn never() -> Shutdown {
        // The trigger is dropped: `wait` then pends forever.
        Shutdown::manual().1
    }

    /// A signal fired by SIGINT, SIGTERM or SIGHUP. Must be called inside a tokio runtime.
    pub fn from_os_signals() -> std::io::Result<Shutdown> {
        use tokio::signal::unix::{SignalKind, signal};
        let (trigger, s) = Shutdown::manual();
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut hup = signal(SignalKind::hangup())?;
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
                _ = hup.recv() => "SIGHUP",
            };
            trigger.fire(name);
        });
        Ok(s)
    }

    /// The reason, once fired.
    pub fn fired(&self) -> Option<&'static str> {
        *self.rx.borrow()
    }

    /// Resolves when the signal fires (immediately if it already has).
    pub async fn wait(&self) -> &'static str {
        let mut rx = self.rx.clone();
        loop {
            if let Some(r) = *rx.borrow_and_update() {
                return r;
            }
            if rx.changed().await.is_err() {
                // Trigger dropped without firing: never fires.
                std::future::pending::<()>().await;
            }
        }
    }
}
