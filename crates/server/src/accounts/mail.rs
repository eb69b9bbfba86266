//! Outgoing email: a durable queue in the database, drained by one background task.
//!
//! A request that sends mail only queues it ([`Mailer::send`]) and returns; the
//! [`MailWorker`] delivers it. Queued mail is rows in the store, so a restart loses
//! nothing: the next start sends what was left. A failed attempt is retried with a
//! growing delay (5 s, 10 s, 20 s … at most 10 min) and logged with the number of
//! emails waiting; an email the SMTP server refuses for good (a 5xx answer) is dropped
//! with an error line. Each attempt first claims the row for a while, so the nodes of a
//! cluster sharing one database never send one email twice at once.
//!
//! Without `--smtp-url`, emails are written to `--outbox-dir` as `.eml` files and the
//! link in each is logged, so a laptop needs no mail server.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::{millis, now_ms};
use crate::store::accounts::{MailRecord, NewMail};
use crate::store::{Store, StoreResult};

/// How long an attempt keeps an email from other workers.
const CLAIM_LEASE: Duration = Duration::from_secs(60);
/// How often the queue is looked at without being woken (retries, other nodes' mail).
const POLL_EVERY: Duration = Duration::from_secs(2);
/// Delay before the first retry; doubled each time.
const FIRST_RETRY: Duration = Duration::from_secs(5);
/// Longest delay between retries.
const MAX_RETRY: Duration = Duration::from_secs(600);
/// Emails taken from the queue per look.
const BATCH: u32 = 20;
/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the mail settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// `--smtp-url` could not be read.
    #[error("--smtp-url: {0}")]
    SmtpUrl(#[from] lettre::transport::smtp::Error),
    /// `--mail-from` is not an address.
    #[error("--mail-from: {0}")]
    From(#[from] lettre::address::AddressError),
}

/// Where emails go.
#[derive(Clone)]
enum Transport {
    /// An SMTP server.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// Files in a directory (the default: nothing to set up).
    Outbox(PathBuf),
}

/// Queues email; cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    /// Where the queue lives.
    store: Arc<dyn Store>,
    /// Wakes the worker when something was queued.
    wake: Arc<Notify>,
}

impl Mailer {
    /// Queues an email and wakes the worker. Returns once the email is stored.
    pub async fn send(&self, mail: NewMail) -> StoreResult<()> {
        self.store.enqueue_mail(&mail, now_ms()).await?;
        self.wake.notify_one();
        Ok(())
    }
}

/// The background task that delivers queued email.
pub struct MailWorker {
    /// Where the queue lives.
    store: Arc<dyn Store>,
    /// How emails leave.
    transport: Transport,
    /// The sender address.
    from: Mailbox,
    /// Woken by [`Mailer::send`].
    wake: Arc<Notify>,
}

impl MailWorker {
    /// The mailer and its worker for these settings (`smtp_url` or the outbox dir).
    pub fn new(
        store: Arc<dyn Store>,
        smtp_url: Option<&str>,
        outbox_dir: PathBuf,
        from: &str,
    ) -> Result<(Mailer, MailWorker), MailError> {
        let transport = match smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build(),
            ),
            None => Transport::Outbox(outbox_dir),
        };
        let wake = Arc::new(Notify::new());
        let mailer = Mailer {
            store: store.clone(),
            wake: wake.clone(),
        };
        let worker = MailWorker {
            store,
            transport,
            from: from.parse()?,
            wake,
        };
        Ok((mailer, worker))
    }

    /// Delivers queued email until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        if let Transport::Outbox(dir) = &self.transport {
            tracing::info!(dir = %dir.display(), "no --smtp-url: emails are written to the outbox directory");
        }
        loop {
            if let Err(err) = self.drain().await {
                tracing::warn!(%err, "could not read the mail queue");
            }
            if crate::telemetry::enabled() {
                if let Ok(queued) = self.store.queued_mail().await {
                    metrics::gauge!(crate::telemetry::MAIL_QUEUE).set(queued as f64);
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL_EVERY) => {}
            }
        }
    }

    /// Sends everything due now.
    async fn drain(&self) -> StoreResult<()> {
        loop {
            let now = now_ms();
            let due = self.store.due_mail(now, BATCH).await?;
            if due.is_empty() {
                return Ok(());
            }
            for queued in due {
                let lease = now + millis(CLAIM_LEASE);
                if self.store.claim_mail(queued.id, now, lease).await? {
                    self.attempt(queued).await?;
                }
            }
        }
    }

    /// One delivery attempt of a claimed email.
    async fn attempt(&self, queued: MailRecord) -> StoreResult<()> {
        match self.deliver(&queued.mail).await {
            Ok(()) => self.store.mail_sent(queued.id).await,
            Err(Failure::Permanent(reason)) => {
                tracing::error!(to = %queued.mail.to, %reason, "email refused for good; dropped");
                self.store.mail_sent(queued.id).await
            }
            Err(Failure::Temporary(reason)) => {
                let delay = retry_delay(queued.attempts);
                let waiting = self.store.queued_mail().await.unwrap_or(0);
                tracing::warn!(
                    to = %queued.mail.to,
                    attempt = queued.attempts,
                    waiting,
                    retry_in_secs = delay.as_secs(),
                    %reason,
                    "could not send email; the SMTP server may be down, it stays queued"
                );
                let retry_at = now_ms() + millis(delay);
                self.store.mail_failed(queued.id, retry_at, &reason).await
            }
        }
    }

    async fn deliver(&self, mail: &NewMail) -> Result<(), Failure> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|err| Failure::Permanent(format!("bad recipient address: {err}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|err| Failure::Permanent(format!("could not build the email: {err}")))?;
        match &self.transport {
            Transport::Smtp(smtp) => match smtp.send(message).await {
                Ok(_) => Ok(()),
                Err(err) if err.is_permanent() => Err(Failure::Permanent(err.to_string())),
                Err(err) => Err(Failure::Temporary(err.to_string())),
            },
            Transport::Outbox(dir) => {
                let path = dir.join(format!(
                    "{}-{}.eml",
                    now_ms(),
                    hex::encode(rand::random::<[u8; 4]>())
                ));
                let written = async {
                    tokio::fs::create_dir_all(dir).await?;
                    tokio::fs::write(&path, message.formatted()).await
                };
                written
                    .await
                    .map_err(|err| Failure::Temporary(format!("{}: {err}", path.display())))?;
                let link = first_link(&mail.body).unwrap_or("(none)");
                tracing::info!(to = %mail.to, subject = %mail.subject, %link, file = %path.display(), "email written to the outbox");
                Ok(())
            }
        }
    }
}

/// Why an attempt failed.
enum Failure {
    /// Try again later (server down, timeout, 4xx).
    Temporary(String),
    /// Trying again cannot help (5xx, unusable address).
    Permanent(String),
}

/// Delay before attempt `attempts + 1`: 5 s doubling, at most 10 min.
fn retry_delay(attempts: i64) -> Duration {
    let doublings = attempts.clamp(1, 16) as u32 - 1;
    FIRST_RETRY
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(MAX_RETRY)
}

/// The first `http(s)://` link in a text, for the outbox's log line.
fn first_link(text: &str) -> Option<&str> {
    text.split_whitespace()
        .find(|word| word.starts_with("http://") || word.starts_with("https://"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_up_to_ten_minutes() {
        assert_eq!(retry_delay(1), Duration::from_secs(5));
        assert_eq!(retry_delay(2), Duration::from_secs(10));
        assert_eq!(retry_delay(4), Duration::from_secs(40));
        assert_eq!(retry_delay(12), MAX_RETRY);
        assert_eq!(retry_delay(10_000), MAX_RETRY);
    }

    #[test]
    fn finds_the_link_to_log() {
        let body = "Hi Ann,\n\nconfirm: http://127.0.0.1:8080/#verify=abc\n\nnatter";
        assert_eq!(first_link(body), Some("http://127.0.0.1:8080/#verify=abc"));
        assert_eq!(first_link("no link"), None);
    }
}
