//! TLS from C: a server's certificate and key, a client's trusted roots, read from PEM files
//! when set (so a bad file is an error at once, not at the first connection), and handed to
//! the core's TLS layer (rustls with the ring provider).

use std::ffi::{c_char, c_int};
use std::io::BufReader;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::kp_config;
use crate::ffi;
use crate::status::{fail, guard, KP_ERR_INTERNAL, KP_ERR_INVALID_ARGUMENT, KP_ERR_IO, KP_OK};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate of a PEM file.
fn certs(path: &str) -> Result<Vec<CertificateDer<'static>>, (c_int, String)> {
    let pem = std::fs::read(path).map_err(|e| (KP_ERR_IO, format!("cannot read {path}: {e}")))?;
    let certs = CertificateDer::pem_reader_iter(&mut BufReader::new(&pem[..]))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| (KP_ERR_INVALID_ARGUMENT, format!("{path}: bad PEM: {e:?}")))?;
    if certs.is_empty() {
        return Err((
            KP_ERR_INVALID_ARGUMENT,
            format!("{path}: no certificate in it (PEM \"BEGIN CERTIFICATE\" expected)"),
        ));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
fn key(path: &str) -> Result<PrivateKeyDer<'static>, (c_int, String)> {
    use rustls::pki_types::pem::Error;
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        Error::Io(e) => (KP_ERR_IO, format!("cannot read {path}: {e}")),
        Error::NoItemsFound => {
            (KP_ERR_INVALID_ARGUMENT, format!("{path}: no private key in it (PEM \"BEGIN PRIVATE KEY\" expected)"))
        }
        e => (KP_ERR_INVALID_ARGUMENT, format!("{path}: no usable private key: {e:?}")),
    })
}

/// ALPN protocols from a comma-separated list (`"h2,http/1.1"`); none for NULL or "".
///
/// # Safety
/// `alpn` is NULL or a NUL-terminated string.
unsafe fn alpn(alpn: *const c_char) -> Result<Vec<Vec<u8>>, (c_int, String)> {
    if alpn.is_null() {
        return Ok(Vec::new());
    }
    // SAFETY: the caller's contract.
    let text = unsafe { ffi::str_arg(alpn) }.map_err(|e| (KP_ERR_INVALID_ARGUMENT, format!("alpn: {e}")))?;
    Ok(text.split(',').map(str::trim).filter(|p| !p.is_empty()).map(|p| p.as_bytes().to_vec()).collect())
}

/// Runs `f` on the config, turning its error into a status with the message.
fn with(
    function: &str,
    config: *mut kp_config,
    f: impl FnOnce(&mut kp_config) -> Result<(), (c_int, String)>,
) -> c_int {
    guard(function, KP_ERR_INTERNAL, || {
        // SAFETY: the header's contract: NULL or a live config used by one thread at a time.
        let Some(c) = (unsafe { ffi::as_mut(config) }) else {
            return fail(KP_ERR_INVALID_ARGUMENT, format!("{function}: config is NULL"));
        };
        match f(c) {
            Ok(()) => KP_OK,
            Err((code, message)) => fail(code, format!("{function}: {message}")),
        }
    })
}

/// Server: serve TLS (1.2 and 1.3) with the certificate chain of the PEM file `cert_path`
/// (leaf first) and the private key of `key_path`, offering the ALPN protocols of `alpn` (a
/// comma-separated list such as `"http/1.1"`; NULL for none). The files are read now: one that
/// cannot be read is `KP_ERR_IO`, one without a certificate or key, or a key that does not go
/// with the certificate, `KP_ERR_INVALID_ARGUMENT`.
///
/// Every connection then does a TLS handshake before `on_connect` (within 10 s); input is
/// plaintext and sends are encrypted, the callbacks unchanged. A failed handshake closes only
/// its connection, logged and counted (`tls_handshake_failures`), without any callback.
///
/// # Safety
/// `config` is a live config; the strings are NUL-terminated (`alpn` may be NULL).
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_tls_server(
    config: *mut kp_config,
    cert_path: *const c_char,
    key_path: *const c_char,
    alpn_list: *const c_char,
) -> c_int {
    with("kp_config_set_tls_server", config, |c| {
        // SAFETY: the caller's contract.
        let cert_path =
            unsafe { ffi::str_arg(cert_path) }.map_err(|e| (KP_ERR_INVALID_ARGUMENT, format!("cert_path: {e}")))?;
        // SAFETY: the caller's contract.
        let key_path =
            unsafe { ffi::str_arg(key_path) }.map_err(|e| (KP_ERR_INVALID_ARGUMENT, format!("key_path: {e}")))?;
        // SAFETY: the caller's contract.
        let protocols = unsafe { alpn(alpn_list) }?;
        let mut server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| (KP_ERR_INTERNAL, e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs(cert_path)?, key(key_path)?)
            .map_err(|e| (KP_ERR_INVALID_ARGUMENT, format!("the certificate and key do not go together: {e}")))?;
        server.alpn_protocols = protocols;
        c.tls_server = Some(Arc::new(server));
        Ok(())
    })
}

/// Client: trust the root certificates of the PEM file `ca_path` for targets added with
/// `kp_client_connect_tls`, offering the ALPN protocols of `alpn` (comma-separated; NULL for
/// none). Read now: `KP_ERR_IO` if it cannot be read, `KP_ERR_INVALID_ARGUMENT` if it holds no
/// usable certificate.
///
/// # Safety
/// `config` is a live config; the strings are NUL-terminated (`alpn` may be NULL).
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_tls_client(
    config: *mut kp_config,
    ca_path: *const c_char,
    alpn_list: *const c_char,
) -> c_int {
    with("kp_config_set_tls_client", config, |c| {
        // SAFETY: the caller's contract.
        let ca_path =
            unsafe { ffi::str_arg(ca_path) }.map_err(|e| (KP_ERR_INVALID_ARGUMENT, format!("ca_path: {e}")))?;
        // SAFETY: the caller's contract.
        let protocols = unsafe { alpn(alpn_list) }?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in certs(ca_path)? {
            roots.add(cert).map_err(|e| (KP_ERR_INVALID_ARGUMENT, format!("{ca_path}: bad root certificate: {e}")))?;
        }
        let mut client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| (KP_ERR_INTERNAL, e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = protocols;
        c.tls_client = Some(Arc::new(client));
        Ok(())
    })
}
