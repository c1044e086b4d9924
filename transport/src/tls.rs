//! TLS identities (certificate chain and key) and trust (which certificates a client
//! accepts).
//!
//! Production loads PEM files. Development generates a self-signed certificate for
//! `localhost`, `127.0.0.1` and `::1` once into a directory; local clients then trust that
//! one certificate file as their root (`Trust::from_ca_file`). Verification is never
//! turned off: a client trusts exactly the roots it was given.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A TLS identity or trust problem, naming the file involved.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A PEM file holds nothing usable.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A socket could not be bound.
    #[error("{addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Certificate generation or the TLS library refused the material.
    #[error("TLS: {0}")]
    Other(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A server's certificate chain and private key.
#[derive(Debug)]
pub struct ServerIdentity {
    pub(crate) certs: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
}

impl Clone for ServerIdentity {
    fn clone(&self) -> Self {
        ServerIdentity {
            certs: self.certs.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// File names inside a development TLS directory.
pub const DEV_CERT_FILE: &str = "cert.pem";
/// File name of the development private key.
pub const DEV_KEY_FILE: &str = "key.pem";

impl ServerIdentity {
    /// Loads a certificate chain and a private key from PEM files.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let certs = CertificateDer::pem_file_iter(cert)
            .map_err(|e| TlsError::Pem {
                path: cert.into(),
                what: e.to_string(),
            })?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Pem {
                path: cert.into(),
                what: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(TlsError::Pem {
                path: cert.into(),
                what: "no CERTIFICATE block".into(),
            });
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Pem {
            path: key.into(),
            what: match e {
                rustls::pki_types::pem::Error::NoItemsFound => {
                    "no private key (a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block)".into()
                }
                e => e.to_string(),
            },
        })?;
        Ok(ServerIdentity { certs, key })
    }

    /// The development identity in `dir`: loaded if `dir` holds one, else generated and
    /// written there (the key readable by its owner only). Returns the identity and the
    /// path of the certificate, which local clients pass to [`Trust::from_ca_file`].
    /// Several processes may call this at once: exactly one certificate wins.
    pub fn dev(dir: &Path) -> Result<(Self, PathBuf), TlsError> {
        let cert_path = dir.join(DEV_CERT_FILE);
        let key_path = dir.join(DEV_KEY_FILE);
        if !cert_path.exists() {
            Self::generate_dev(dir)?;
        }
        Ok((Self::from_pem_files(&cert_path, &key_path)?, cert_path))
    }

    fn generate_dev(dir: &Path) -> Result<(), TlsError> {
        let names = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
        let ck = rcgen::generate_simple_self_signed(names)
            .map_err(|e| TlsError::Other(e.to_string()))?;
        let parent = dir.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(io_err(parent))?;
        // Write into a private temporary directory, then rename it into place: the rename
        // is atomic, so concurrent starters agree on one certificate.
        let tmp = parent.join(format!(
            ".{}.tmp-{}",
            dir.file_name().and_then(|n| n.to_str()).unwrap_or("tls"),
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&tmp);
        // Created here and now (never an existing directory someone else made), closed
        // to other users.
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(&tmp).map_err(io_err(&tmp))?;
        let key_tmp = tmp.join(DEV_KEY_FILE);
        write_private(&key_tmp, ck.signing_key.serialize_pem().as_bytes())?;
        let cert_tmp = tmp.join(DEV_CERT_FILE);
        fs::write(&cert_tmp, ck.cert.pem()).map_err(io_err(&cert_tmp))?;
        if fs::rename(&tmp, dir).is_err() {
            // Someone else won (or `dir` exists but was empty of a certificate).
            let _ = fs::remove_dir_all(&tmp);
            if !dir.join(DEV_CERT_FILE).exists() {
                fs::create_dir_all(dir).map_err(io_err(dir))?;
                let key = dir.join(DEV_KEY_FILE);
                write_private(&key, ck.signing_key.serialize_pem().as_bytes())?;
                let cert = dir.join(DEV_CERT_FILE);
                fs::write(&cert, ck.cert.pem()).map_err(io_err(&cert))?;
            }
        }
        Ok(())
    }

    /// The rustls server configuration for this identity and one ALPN protocol.
    pub(crate) fn rustls_config(&self, alpn: &[u8]) -> Result<rustls::ServerConfig, TlsError> {
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| TlsError::Other(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(self.certs.clone(), self.key.clone_key())
            .map_err(|e| TlsError::Other(e.to_string()))?;
        cfg.alpn_protocols = vec![alpn.to_vec()];
        Ok(cfg)
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))
}

pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls configuration of the HTTP clients (webhooks, the auth backend, the admin
/// CLI): the system's root certificates, this crate's ring provider, HTTP/1.1. Given to
/// reqwest as is, so no process-wide provider is needed.
pub fn https_client_config() -> rustls::ClientConfig {
    let trust = Trust::default();
    if let Some(problem) = &trust.problem {
        tracing::warn!(%problem, "HTTPS backends cannot be verified");
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .with_root_certificates(trust.roots.clone())
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    cfg
}

/// The certificates a client accepts as roots.
#[derive(Debug, Clone)]
pub struct Trust {
    pub(crate) roots: Arc<RootCertStore>,
    /// Why the roots could not be loaded ([`Trust::default`]); connecting then fails
    /// with this instead of an unknown-issuer error.
    problem: Option<Arc<str>>,
}

/// The system's root certificates ([`Trust::system_roots`]); a store that cannot be
/// loaded makes every connection attempt fail, saying why.
impl Default for Trust {
    fn default() -> Self {
        Trust::system_roots().unwrap_or_else(|e| Trust {
            roots: Arc::new(RootCertStore::empty()),
            problem: Some(e.to_string().into()),
        })
    }
}

impl Trust {
    /// Trusts the certificates in a PEM file (a CA, or the development certificate).
    pub fn from_ca_file(path: &Path) -> Result<Self, TlsError> {
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| TlsError::Pem {
                path: path.into(),
                what: e.to_string(),
            })?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Pem {
                path: path.into(),
                what: e.to_string(),
            })?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(TlsError::Pem {
                path: path.into(),
                what: "no usable CERTIFICATE block".into(),
            });
        }
        Ok(Trust {
            roots: Arc::new(roots),
            problem: None,
        })
    }

    /// Trusts the certificates in PEM text (for a platform where the file is not on a
    /// file system, e.g. inside an Android package). `what` names it in errors.
    pub fn from_ca_pem(pem: &[u8], what: &str) -> Result<Self, TlsError> {
        let pem_err = |e: String| TlsError::Pem {
            path: what.into(),
            what: e,
        };
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_err(e.to_string()))?;
        let mut roots = RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(pem_err("no usable CERTIFICATE block".into()));
        }
        Ok(Trust {
            roots: Arc::new(roots),
            problem: None,
        })
    }

    /// Trusts the operating system's root certificates (what a deployment with a
    /// certificate from a public CA needs). `SSL_CERT_FILE` and `SSL_CERT_DIR`, when set,
    /// replace the system's store, as in OpenSSL. Loaded once per process.
    pub fn system_roots() -> Result<Self, TlsError> {
        static ROOTS: std::sync::OnceLock<Result<Arc<RootCertStore>, String>> =
            std::sync::OnceLock::new();
        let roots = ROOTS.get_or_init(|| {
            let loaded = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(loaded.certs);
            if added == 0 {
                let why = loaded
                    .errors
                    .first()
                    .map_or_else(|| "the store is empty".to_string(), |e| e.to_string());
                return Err(format!(
                    "no usable root certificate in the system's store ({why}); give a CA file"
                ));
            }
            Ok(Arc::new(roots))
        });
        match roots {
            Ok(roots) => Ok(Trust {
                roots: roots.clone(),
                problem: None,
            }),
            Err(e) => Err(TlsError::Other(e.clone())),
        }
    }

    pub(crate) fn rustls_config(&self, alpn: &[u8]) -> Result<rustls::ClientConfig, TlsError> {
        if let Some(problem) = &self.problem {
            return Err(TlsError::Other(problem.to_string()));
        }
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| TlsError::Other(e.to_string()))?
            .with_root_certificates(self.roots.clone())
            .with_no_client_auth();
        cfg.alpn_protocols = vec![alpn.to_vec()];
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_identity_is_generated_once_and_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("tls");
        let (a, ca) = ServerIdentity::dev(&dir).unwrap();
        let (b, _) = ServerIdentity::dev(&dir).unwrap();
        assert_eq!(a.certs, b.certs);
        Trust::from_ca_file(&ca).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join(DEV_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the key is private");
        }
    }

    #[test]
    fn missing_and_empty_files_name_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("nope.pem");
        let e = Trust::from_ca_file(&p).unwrap_err().to_string();
        assert!(e.contains("nope.pem"), "{e}");
        fs::write(&p, "not pem").unwrap();
        let e = Trust::from_ca_file(&p).unwrap_err().to_string();
        assert!(e.contains("nope.pem"), "{e}");
    }
}
