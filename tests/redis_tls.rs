//! `RedisStore` over TLS (`rediss://`, feature `redis-tls`) against real `redis-server`s
//! started with `--tls-port` and certificates this test makes (rcgen): the shared store
//! suite and a layer round trip through TLS with a given CA bundle; mutual TLS (no client
//! certificate refused, a CA-signed one accepted); and a readable error for a server
//! certificate that does not verify (another CA's bundle, or the platform's roots). Skipped
//! without `redis-server` unless `CI` is set.

#![cfg(feature = "redis-tls")]

mod common;
mod redis_common;

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use redis_common::server::{free_port, have_redis_server, Server, TempDir};
use redis_common::*;
use sessile::{RedisStore, SessionStore, StoreError};

/// A CA, and the server and client certificates it signed, as PEM.
struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

impl Pki {
    fn new(ca_name: &str) -> Pki {
        let ca = ca(ca_name);
        let leaf = |names: Vec<String>| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &ca)
                .unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(vec!["127.0.0.1".into(), "localhost".into()]);
        let (client_cert, client_key) = leaf(vec!["sessile-test-client".into()]);
        Pki {
            ca: ca.pem(),
            server_cert,
            server_key,
            client_cert,
            client_key,
        }
    }
}

/// A `redis-server` with a plain port (for readiness) and a TLS port, its certificate signed
/// by `pki`'s CA; clients must present a certificate when `auth_clients`.
struct TlsServer {
    server: Server,
    tls_port: u16,
    _dir: TempDir,
}

impl TlsServer {
    async fn start(test: &str, pki: &Pki, auth_clients: bool) -> Option<TlsServer> {
        if !have_redis_server(test) {
            return None;
        }
        let dir = TempDir::new("tls");
        let write = |name: &str, text: &str| {
            let path = dir.0.join(name);
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        };
        let tls_port = free_port();
        let args = vec![
            "--tls-port".to_string(),
            tls_port.to_string(),
            "--tls-cert-file".into(),
            write("server.crt", &pki.server_cert),
            "--tls-key-file".into(),
            write("server.key", &pki.server_key),
            "--tls-ca-cert-file".into(),
            write("ca.crt", &pki.ca),
            "--tls-auth-clients".into(),
            if auth_clients { "yes" } else { "no" }.into(),
        ];
        let server =
            Server::start_with(free_port(), &args, Some(Path::new(&dir.0))).expect("redis-server");
        server.wait_ready().await;
        Some(TlsServer {
            server,
            tls_port,
            _dir: dir,
        })
    }

    fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}/", self.tls_port)
    }
}

/// The shared suite and a layer round trip (login, then the session read back) through TLS,
/// trusting the test's CA; and the sessions are really on the server (seen on its plain port).
#[tokio::test]
async fn the_suite_and_the_layer_run_over_tls_with_a_given_ca() {
    let test = "the_suite_and_the_layer_run_over_tls_with_a_given_ca";
    let pki = Pki::new("sessile test CA");
    let Some(server) = TlsServer::start(test, &pki, false).await else {
        return;
    };
    let prefix = unique_prefix("tls");
    let store = RedisStore::builder(server.url())
        .prefix(prefix.as_str())
        .tls_root_certificates(pki.ca.as_bytes())
        .build()
        .await
        .expect("TLS connection trusting the test's CA");
    let failures = suite_failures(&store).await;
    assert!(
        failures.is_empty(),
        "suite failures over TLS:\n{}",
        failures.join("\n")
    );

    let addr = common::start(
        common::builder()
            .store(store.clone())
            .build()
            .expect("layer"),
    )
    .await;
    let (sid, cookie) = common::login(addr).await;
    let mut plain = raw(&server.server.url()).await;
    assert!(
        raw_exists(&mut plain, &store.key(&sid)).await,
        "the login's session is on the TLS server"
    );
    let user = common::get_with(addr, "/get/user", Some(&cookie)).await;
    assert_eq!(
        user.body, "true",
        "the session read back over TLS: {user:?}"
    );
    store.clear().await.unwrap();
}

/// The server's certificate signed by a CA the client does not trust: `build` fails with a
/// `Backend` error saying the certificate does not verify and what was trusted, both with
/// another CA's bundle and with the platform's roots.
#[tokio::test]
async fn a_certificate_that_does_not_verify_is_a_readable_error() {
    let test = "a_certificate_that_does_not_verify_is_a_readable_error";
    let pki = Pki::new("sessile test CA");
    let Some(server) = TlsServer::start(test, &pki, false).await else {
        return;
    };
    let other = Pki::new("some other CA");
    let err = RedisStore::builder(server.url())
        .tls_root_certificates(other.ca.as_bytes())
        .build()
        .await
        .expect_err("a certificate of an untrusted CA");
    let text = err.to_string();
    eprintln!("untrusted CA: {text}");
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    assert!(
        text.contains("TLS certificate does not verify")
            && text.contains("UnknownIssuer")
            && text.contains("the CA bundle given"),
        "{text}"
    );

    let err = RedisStore::builder(server.url())
        .build()
        .await
        .expect_err("the test's CA is not among the platform's roots");
    let text = err.to_string();
    assert!(
        text.contains("TLS certificate does not verify")
            && text.contains("platform's trusted roots"),
        "{text}"
    );
}

/// A server requiring client certificates (`--tls-auth-clients yes`): refused without one,
/// served with one its CA signed.
#[tokio::test]
async fn mutual_tls_needs_the_client_certificate() {
    let test = "mutual_tls_needs_the_client_certificate";
    let pki = Pki::new("sessile test CA");
    let Some(server) = TlsServer::start(test, &pki, true).await else {
        return;
    };
    let err = RedisStore::builder(server.url())
        .tls_root_certificates(pki.ca.as_bytes())
        .build()
        .await
        .expect_err("no client certificate");
    let text = err.to_string();
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    assert!(
        text.contains("requires a client certificate")
            && text.contains("RedisStoreBuilder::tls_client_certificate"),
        "{text}"
    );

    let store = RedisStore::builder(server.url())
        .prefix(unique_prefix("mtls"))
        .tls_root_certificates(pki.ca.as_bytes())
        .tls_client_certificate(pki.client_cert.as_bytes(), pki.client_key.as_bytes())
        .build()
        .await
        .expect("mutual TLS with a certificate the server's CA signed");
    let record = sessile::Record::default();
    store.set("mtls", &record).await.unwrap();
    assert!(store.get("mtls").await.unwrap().is_some());
}
