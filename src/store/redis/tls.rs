//! TLS for the Redis store (feature `redis-tls`): `rediss://` URLs, by rustls.
//!
//! - **Roots**: the platform's trusted roots (read by rustls-native-certs) unless a CA bundle
//!   is given with [`RedisStoreBuilder::tls_root_certificates`], which then replaces them.
//! - **Mutual TLS**: a client certificate and key with
//!   [`RedisStoreBuilder::tls_client_certificate`] (for `redis-server --tls-auth-clients yes`).
//! - **Verification**: always on. A server certificate that does not verify (unknown issuer,
//!   wrong host name, expired) fails [`RedisStoreBuilder::build`] with a
//!   [`StoreError::Backend`] saying so, not with a bare I/O error.
//!
//! The crypto is aws-lc-rs (rustls's default provider); the store installs it as the
//! process's default rustls provider before its first TLS connection if nothing else
//! installed one first.

use ::redis::{ClientTlsConfig, RedisError, TlsCertificates};

use super::RedisStoreBuilder;
use crate::error::StoreError;

/// The certificates given to a builder.
#[derive(Clone, Default)]
pub(super) struct TlsOptions {
    root_pem: Option<Vec<u8>>,
    client: Option<(Vec<u8>, Vec<u8>)>,
}

impl TlsOptions {
    /// redis-rs's form, or `None` when no certificate was given (a `rediss://` URL then
    /// trusts the platform's roots).
    pub(super) fn certificates(&self) -> Option<TlsCertificates> {
        if self.root_pem.is_none() && self.client.is_none() {
            return None;
        }
        Some(TlsCertificates {
            client_tls: self.client.as_ref().map(|(cert, key)| ClientTlsConfig {
                client_cert: cert.clone(),
                client_key: key.clone(),
            }),
            root_cert: self.root_pem.clone(),
        })
    }

    /// Whether a CA bundle was given (for the error message).
    fn own_roots(&self) -> bool {
        self.root_pem.is_some()
    }
}

impl RedisStoreBuilder {
    /// Trusts the CA certificates of this PEM bundle, instead of the platform's roots, for
    /// the server certificate of a `rediss://` URL (feature `redis-tls`). For a private CA,
    /// as managed Redis services and self-run TLS servers use.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let ca = std::fs::read("/etc/redis/tls/ca.crt")?;
    /// let store = sessile::RedisStore::builder("rediss://redis.internal:6380/")
    ///     .tls_root_certificates(ca)
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "redis-tls")))]
    pub fn tls_root_certificates(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls.root_pem = Some(pem.into());
        self
    }

    /// Presents this client certificate (PEM chain) and private key (PEM) to the server:
    /// mutual TLS, for a server started with `--tls-auth-clients yes` (feature `redis-tls`).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = sessile::RedisStore::builder("rediss://redis.internal:6380/")
    ///     .tls_root_certificates(std::fs::read("/etc/redis/tls/ca.crt")?)
    ///     .tls_client_certificate(
    ///         std::fs::read("/etc/app/tls/client.crt")?,
    ///         std::fs::read("/etc/app/tls/client.key")?,
    ///     )
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "redis-tls")))]
    pub fn tls_client_certificate(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.tls.client = Some((cert_pem.into(), key_pem.into()));
        self
    }
}

/// Installs aws-lc-rs as the process's default rustls provider unless one is installed.
/// redis-rs builds its rustls config with the default provider.
pub(super) fn install_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine: a provider is installed either way.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

/// The rustls error under a redis-rs error, if the failure was TLS's.
fn rustls_error(e: &RedisError) -> Option<&rustls::Error> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(found) = err.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        // redis-rs keeps I/O errors as `Arc<dyn Error>`, and `io::Error::source` skips the
        // error it wraps: look inside both.
        let inner: &(dyn std::error::Error + 'static) =
            match err.downcast_ref::<std::sync::Arc<dyn std::error::Error + Send + Sync>>() {
                Some(arc) => &**arc,
                None => err,
            };
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            if let Some(found) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Some(found);
            }
        }
        if let Some(found) = inner.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        source = err.source();
    }
    None
}

/// A readable error for a TLS handshake that failed on the server's certificate; `None`
/// for any other failure.
pub(super) fn certificate_error(e: &RedisError, options: &TlsOptions) -> Option<StoreError> {
    let err = rustls_error(e)?;
    let why = match err {
        rustls::Error::InvalidCertificate(why) => why,
        rustls::Error::AlertReceived(
            rustls::AlertDescription::CertificateRequired
            | rustls::AlertDescription::BadCertificate
            | rustls::AlertDescription::UnknownCA,
        ) => {
            let given = if options.client.is_some() {
                "the one given was refused"
            } else {
                "give one with RedisStoreBuilder::tls_client_certificate"
            };
            return Some(StoreError::backend(format!(
                "the Redis server requires a client certificate its CA signed ({err}): {given}"
            )));
        }
        other => {
            return Some(StoreError::backend(format!(
                "TLS handshake with Redis failed: {other}"
            )))
        }
    };
    let trusted = if options.own_roots() {
        "the CA bundle given to RedisStoreBuilder::tls_root_certificates"
    } else {
        "the platform's trusted roots (give a CA bundle with RedisStoreBuilder::tls_root_certificates)"
    };
    Some(StoreError::backend(format!(
        "the Redis server's TLS certificate does not verify ({why:?}); trusted: {trusted}"
    )))
}
