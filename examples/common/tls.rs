//! TLS configs for the examples: a server's from PEM files or a fresh self-signed certificate,
//! a client's trusting a given root (PEM). Shared by the examples and the tests.

#![allow(dead_code)] // each example uses part of it

use std::fs;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The crypto provider every config here uses (ring).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate of a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs: Result<Vec<_>, _> = rustls_pemfile_certs(&pem);
    let certs = certs.map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it (PEM \"BEGIN CERTIFICATE\" expected)", path.display()));
    }
    Ok(certs)
}

/// Reads the private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    use rustls::pki_types::pem::Error;
    use rustls::pki_types::pem::PemObject;
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        Error::Io(e) => format!("cannot read {}: {e}", path.display()),
        Error::NoItemsFound => format!("{}: no private key in it (PEM \"BEGIN PRIVATE KEY\" expected)", path.display()),
        e => format!("{}: no usable private key: {e:?}", path.display()),
    })
}

fn rustls_pemfile_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_reader_iter(&mut BufReader::new(pem))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM: {e:?}"))
}

/// A server config from a certificate chain and its key, offering `alpn` (TLS 1.2 and 1.3).
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ServerConfig>, String> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key do not go together: {e}"))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A server config from PEM files.
pub fn server_config_from_files(cert: &Path, key: &Path, alpn: &[&[u8]]) -> Result<Arc<rustls::ServerConfig>, String> {
    server_config(load_certs(cert)?, load_key(key)?, alpn)
}

/// A fresh self-signed certificate for `localhost`, 127.0.0.1 and ::1: the config, and the
/// certificate in PEM (what a client must trust).
pub fn self_signed(alpn: &[&[u8]]) -> Result<(Arc<rustls::ServerConfig>, String), String> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(names).map_err(|e| format!("cannot make a certificate: {e}"))?;
    let key = PrivateKeyDer::try_from(signing_key.serialize_der()).map_err(|e| e.to_string())?;
    let config = server_config(vec![cert.der().clone()], key, alpn)?;
    Ok((config, cert.pem()))
}

/// Like [`self_signed`], valid for `names` instead (host names, or IP addresses as text).
pub fn self_signed_for(names: &[String], alpn: &[&[u8]]) -> Result<(Arc<rustls::ServerConfig>, String), String> {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(names.to_vec()).map_err(|e| format!("cannot make a certificate: {e}"))?;
    let key = PrivateKeyDer::try_from(signing_key.serialize_der()).map_err(|e| e.to_string())?;
    let config = server_config(vec![cert.der().clone()], key, alpn)?;
    Ok((config, cert.pem()))
}

/// A client config that trusts the certificates of `roots` (PEM text), offering `alpn`.
pub fn client_config(roots_pem: &str, alpn: &[&[u8]]) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile_certs(roots_pem.as_bytes())? {
        roots.add(cert).map_err(|e| format!("bad root certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("no root certificate given".into());
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A client config that trusts the roots in a PEM file.
pub fn client_config_from_file(roots: &Path, alpn: &[&[u8]]) -> Result<Arc<rustls::ClientConfig>, String> {
    let pem = fs::read_to_string(roots).map_err(|e| format!("cannot read {}: {e}", roots.display()))?;
    client_config(&pem, alpn)
}
