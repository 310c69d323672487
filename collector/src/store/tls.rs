//! PostgreSQL over TLS: libpq's `sslmode` and `sslrootcert` in the URL, on rustls with the
//! ring provider (it builds with a plain C compiler, so the static musl binary still does).
//!
//! tokio-postgres knows only `disable`, `prefer` and `require`, and no CA file, so both
//! parameters are taken out of the URL here; every other parameter goes to tokio-postgres
//! as before. The certificate checks are ours, so that a refusal says what is wrong.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{ring, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore,
    SignatureScheme,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode`, `prefer` by default as there; `allow` is not supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// Whose roots the server's certificate must chain to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ca {
    File(PathBuf),
    /// `sslrootcert=system`, or `verify-full` without a CA: the bundled web roots.
    Web,
}

/// The TLS part of a PostgreSQL URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub mode: SslMode,
    ca: Option<Ca>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("bad PostgreSQL URL: {0}")]
    Url(String),
    #[error("bad PostgreSQL URL: sslmode={0:?} is not one of disable, prefer, require, verify-ca, verify-full")]
    Mode(String),
    #[error(
        "sslmode=verify-ca needs the server's CA (sslrootcert in the URL or --db-ca-file): a \
         chain checked against public roots without the host name would accept anyone's \
         certificate; use sslmode=verify-full for a server with a public certificate"
    )]
    VerifyCaWithoutCa,
    #[error("sslrootcert=system needs sslmode=verify-full (as in libpq)")]
    SystemNeedsVerifyFull,
    #[error("TLS: cannot read the CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("TLS: the CA file {0} holds no PEM certificate")]
    CaEmpty(String),
    #[error("TLS: {0}")]
    Setup(String),
    #[error(
        "TLS: certificate not valid for host {host} (it names {names}); connect by a name \
         it holds, or use sslmode=verify-ca to check the chain only"
    )]
    WrongHost { host: String, names: String },
    #[error(
        "TLS: unknown certificate authority: the server's certificate is not signed by {roots}"
    )]
    UnknownCa { roots: String },
    #[error("TLS: the server does not offer TLS, which the sslmode requires")]
    NotOffered,
}

/// Splits libpq's TLS parameters off a `postgres://` URL; the last of a repeated one wins,
/// as in libpq. Errors never repeat the URL (it may hold a password).
pub fn parse(url: &str) -> Result<(tokio_postgres::Config, Tls), TlsError> {
    // The query starts at the first `?` after the credentials, as tokio-postgres reads it.
    let after_creds = url.find('@').map_or(0, |i| i + 1);
    let (base, query) = match url[after_creds..].find('?') {
        Some(i) => url.split_at(after_creds + i),
        None => (url, ""),
    };
    let (mut mode, mut root) = (None, None);
    let mut kept = Vec::new();
    for pair in query
        .trim_start_matches('?')
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = || {
            percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map(|v| v.into_owned())
                .map_err(|_| TlsError::Url(format!("{key} is not UTF-8")))
        };
        match key {
            "sslmode" => mode = Some(value()?),
            "sslrootcert" => root = Some(value()?),
            _ => kept.push(pair),
        }
    }
    let rest = match kept.is_empty() {
        true => base.to_owned(),
        false => format!("{base}?{}", kept.join("&")),
    };
    let mut config: tokio_postgres::Config =
        rest.parse().map_err(|e| TlsError::Url(format!("{e}")))?;
    let ca = match root.as_deref() {
        None | Some("") => None,
        Some("system") => Some(Ca::Web),
        Some(path) => Some(Ca::File(path.into())),
    };
    let mode = match mode.as_deref() {
        None if ca == Some(Ca::Web) => SslMode::VerifyFull,
        None => SslMode::Prefer,
        Some("disable") => SslMode::Disable,
        Some("prefer") => SslMode::Prefer,
        Some("require") => SslMode::Require,
        Some("verify-ca") => SslMode::VerifyCa,
        Some("verify-full") => SslMode::VerifyFull,
        Some(other) => return Err(TlsError::Mode(other.to_owned())),
    };
    match (mode, &ca) {
        (SslMode::VerifyCa, None) => return Err(TlsError::VerifyCaWithoutCa),
        (m, Some(Ca::Web)) if m != SslMode::VerifyFull => {
            return Err(TlsError::SystemNeedsVerifyFull)
        }
        _ => {}
    }
    config.ssl_mode(match mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    Ok((config, Tls { mode, ca }))
}

/// The URL with `sslrootcert` set to `path`, which wins over one already there.
pub fn with_ca_file(url: &str, path: &Path) -> Result<String, String> {
    let path = path.to_str().ok_or("--db-ca-file is not UTF-8")?;
    let path = percent_encoding::utf8_percent_encode(path, percent_encoding::NON_ALPHANUMERIC);
    let after_creds = url.find('@').map_or(0, |i| i + 1);
    let sep = if url[after_creds..].contains('?') {
        "&"
    } else {
        "?"
    };
    Ok(format!("{url}{sep}sslrootcert={path}"))
}

impl Tls {
    /// What tokio-postgres uses to start TLS on each new connection.
    pub fn connector(&self) -> Result<MakeRustlsConnect, TlsError> {
        let provider = Arc::new(ring::default_provider());
        let algs = provider.signature_verification_algorithms;
        let roots = match (&self.ca, self.mode) {
            (_, SslMode::Disable) => None,
            (Some(Ca::File(path)), _) => {
                Some((load_ca(path)?, format!("the CA file {}", path.display())))
            }
            (Some(Ca::Web), _) | (None, SslMode::VerifyFull) => Some((
                RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                },
                "any of the bundled web roots (Mozilla's); give the server's CA with \
                 sslrootcert or --db-ca-file"
                    .to_owned(),
            )),
            (None, _) => None,
        };
        let chain = match roots {
            Some((store, name)) => Some((
                WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                    .build()
                    .map_err(|e| TlsError::Setup(e.to_string()))?,
                name,
            )),
            None => None,
        };
        let verifier = Verifier {
            chain,
            check_name: self.mode == SslMode::VerifyFull,
            algs,
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(MakeRustlsConnect::new(config))
    }
}

fn load_ca(path: &Path) -> Result<RootCertStore, TlsError> {
    let shown = path.display().to_string();
    let bad = |reason: String| TlsError::CaFile {
        path: shown.clone(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        store.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if store.is_empty() {
        return Err(TlsError::CaEmpty(shown));
    }
    Ok(store)
}

/// libpq's checks: none without roots (`prefer`, `require`), the chain (`verify-ca`, and
/// `prefer`/`require` given a CA), or the chain and the host name (`verify-full`). The
/// handshake's signatures are always checked.
#[derive(Debug)]
struct Verifier {
    /// The roots' checker and how to name them in an error.
    chain: Option<(Arc<WebPkiServerVerifier>, String)>,
    check_name: bool,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some((chain, roots)) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        // The chain is checked before the name: a name error means a good chain.
        let e = match chain.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(e)) => e,
            other => return other,
        };
        let clear = match e {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
                if !self.check_name =>
            {
                return Ok(ServerCertVerified::assertion())
            }
            CertificateError::NotValidForName => TlsError::WrongHost {
                host: server_name.to_str().into_owned(),
                names: "other names".into(),
            },
            CertificateError::NotValidForNameContext { presented, .. } => TlsError::WrongHost {
                host: server_name.to_str().into_owned(),
                names: presented
                    .iter()
                    .map(|n| bare(n))
                    .collect::<Vec<_>>()
                    .join(", "),
            },
            CertificateError::UnknownIssuer => TlsError::UnknownCa {
                roots: roots.clone(),
            },
            other => return Err(rustls::Error::InvalidCertificate(other)),
        };
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(
            OtherError(Arc::new(clear)),
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// `localhost` for rustls's `DnsName("localhost")`.
fn bare(name: &str) -> &str {
    name.split_once('(')
        .and_then(|(_, n)| n.strip_suffix(')'))
        .map_or(name, |n| n.trim_matches('"'))
}

/// A clear message for a connection that failed in its TLS set-up, if that is what
/// failed: a refused certificate, or a server without TLS.
pub fn explain(e: &tokio_postgres::Error) -> Option<String> {
    if !e.to_string().starts_with("error performing TLS handshake") {
        return None;
    }
    let cause = std::error::Error::source(e)?;
    let inner = cause
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        .and_then(|i| i.downcast_ref::<rustls::Error>());
    Some(match inner {
        Some(rustls::Error::InvalidCertificate(CertificateError::Other(o))) => {
            match o.0.downcast_ref::<TlsError>() {
                Some(clear) => clear.to_string(),
                None => format!("TLS: {}", o.0),
            }
        }
        Some(r) => format!("TLS: {r}"),
        None if cause.to_string() == "server does not support TLS" => {
            TlsError::NotOffered.to_string()
        }
        None => format!("TLS: {cause}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(url: &str) -> Tls {
        parse(url).unwrap().1
    }

    #[test]
    fn modes_and_roots_from_the_url() {
        let t = tls("postgres://u@h/d");
        assert_eq!((t.mode, t.ca), (SslMode::Prefer, None));
        let t = tls("postgres://u@h/d?sslmode=verify-ca&sslrootcert=%2Fetc%2Fca.pem");
        assert_eq!(t.mode, SslMode::VerifyCa);
        assert_eq!(t.ca, Some(Ca::File("/etc/ca.pem".into())));
        let t = tls("postgres://u@h/d?sslrootcert=system");
        assert_eq!((t.mode, t.ca), (SslMode::VerifyFull, Some(Ca::Web)));
        // The last of a repeated parameter wins, as with --db-ca-file appended.
        let url = with_ca_file("postgres://u@h/d?sslrootcert=a.pem", Path::new("b c.pem"));
        assert_eq!(tls(&url.unwrap()).ca, Some(Ca::File("b c.pem".into())));
        let url = with_ca_file("postgres://u:p?w@h/d", Path::new("x.pem")).unwrap();
        assert_eq!(url, "postgres://u:p?w@h/d?sslrootcert=x%2Epem");
        assert_eq!(tls(&url).ca, Some(Ca::File("x.pem".into())));
    }

    #[test]
    fn other_parameters_still_reach_tokio_postgres() {
        let (c, t) = parse(
            "postgresql://u:pw@localhost:6543/db?hostaddr=127.0.0.1&sslmode=verify-full&application_name=x",
        )
        .unwrap();
        assert_eq!(t.mode, SslMode::VerifyFull);
        assert_eq!(
            c.get_hostaddrs(),
            ["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(c.get_application_name(), Some("x"));
        assert_eq!(c.get_password(), Some(&b"pw"[..]));
        assert_eq!(c.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
        let (c, _) = parse("postgres://u@h/d?sslmode=disable").unwrap();
        assert_eq!(c.get_ssl_mode(), tokio_postgres::config::SslMode::Disable);
    }

    #[test]
    fn refusals_name_the_problem_and_never_the_password() {
        for (url, says) in [
            (
                "postgres://u:hunter2@h/d?sslmode=allow",
                "sslmode=\"allow\" is not one of",
            ),
            (
                "postgres://u:hunter2@h/d?sslmode=verify-ca",
                "verify-ca needs the server's CA",
            ),
            (
                "postgres://u:hunter2@h/d?sslmode=require&sslrootcert=system",
                "needs sslmode=verify-full",
            ),
            (
                "postgres://u:hunter2@h:x/d?sslmode=require",
                "bad PostgreSQL URL",
            ),
        ] {
            let e = parse(url).unwrap_err().to_string();
            assert!(e.contains(says) && !e.contains("hunter2"), "{url}: {e}");
        }
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.pem");
        let url = with_ca_file("postgres://u@h/d?sslmode=require", &missing).unwrap();
        let e = tls(&url).connector().err().unwrap().to_string();
        assert!(e.starts_with("TLS: cannot read the CA file"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let url = with_ca_file("postgres://u@h/d?sslmode=verify-full", &empty).unwrap();
        let e = tls(&url).connector().err().unwrap().to_string();
        assert!(e.contains("holds no PEM certificate"), "{e}");
        // disable never reads it.
        let url = with_ca_file("postgres://u@h/d?sslmode=disable", &missing).unwrap();
        assert!(tls(&url).connector().is_ok());
    }
}
