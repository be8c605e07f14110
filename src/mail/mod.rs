//! Email: an SMTP client for notification emails (`lettre`, async on tokio, TLS by rustls) and
//! what those emails say ([`render`]). Which posts become emails, to whom and when is decided by
//! the notification dispatcher; this module only turns a decision into a sent message.

pub mod batch;
pub mod render;
pub mod settings;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
pub use render::{Envelope, Site};
pub use settings::{ConnectionSecurity, EmailArgs, EmailSettings};

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("email address {0:?}: {1}")]
    Address(String, lettre::address::AddressError),
    #[error("SMTP TLS settings: {0}")]
    Tls(lettre::transport::smtp::Error),
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error(transparent)]
    Render(#[from] render::RenderError),
}

/// SMTP connections at most per node: enough to keep a backlog moving, few enough that a
/// small mail server is not flooded.
const POOL_SIZE: u32 = 4;

/// Sends email through the configured SMTP server.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    reply_to: Mailbox,
}

fn mailbox(name: &str, address: &str) -> Result<Mailbox, MailError> {
    let email = address
        .parse()
        .map_err(|e| MailError::Address(address.to_string(), e))?;
    let name = (!name.is_empty()).then(|| name.to_string());
    Ok(Mailbox::new(name, email))
}

impl Mailer {
    /// A mailer for `settings`; the sender's name defaults to the site name. Connecting waits
    /// for the first email.
    pub fn new(settings: &EmailSettings, site_name: &str) -> Result<Mailer, MailError> {
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.smtp_server)
                .port(settings.smtp_port)
                .timeout(Some(settings.timeout))
                .pool_config(PoolConfig::new().max_size(POOL_SIZE));
        if settings.security != ConnectionSecurity::None {
            let tls = TlsParameters::builder(settings.smtp_server.clone())
                .dangerous_accept_invalid_certs(settings.skip_certificate_verification)
                .dangerous_accept_invalid_hostnames(settings.skip_certificate_verification)
                .build_rustls()
                .map_err(MailError::Tls)?;
            builder = builder.tls(match settings.security {
                ConnectionSecurity::Tls => Tls::Wrapper(tls),
                _ => Tls::Required(tls),
            });
        }
        if let Some((user, password)) = &settings.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        let name = if settings.feedback_name.is_empty() {
            site_name
        } else {
            &settings.feedback_name
        };
        Ok(Mailer {
            transport: builder.build(),
            from: mailbox(name, &settings.feedback_email)?,
            reply_to: mailbox("", &settings.reply_to)?,
        })
    }

    /// The envelope of an email to `address`.
    pub fn envelope(&self, name: &str, address: &str) -> Result<Envelope, MailError> {
        Ok(Envelope {
            from: self.from.clone(),
            reply_to: self.reply_to.clone(),
            to: mailbox(name, address)?,
        })
    }

    pub async fn send(&self, message: Message) -> Result<(), MailError> {
        self.transport.send(message).await?;
        Ok(())
    }
}
