//! The PEM files that TLS settings name — certificates, a private key, a CA bundle — read
//! like every file (bounded, regular files only) and parsed, with errors that name the key
//! and the file; and a digest of everything read, so that changed contents make a changed
//! configuration (a renewed certificate at the same path reloads).

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::outside::file::read_bounded;

/// The largest certificate, key or CA file read, in bytes.
pub(crate) const PEM_LIMIT: u64 = 1 << 20;

/// Reads the files of one TLS setting and keeps a SHA-256 of them all.
pub(crate) struct PemFiles {
    digest: ring::digest::Context,
}

impl Default for PemFiles {
    fn default() -> Self {
        PemFiles {
            digest: ring::digest::Context::new(&ring::digest::SHA256),
        }
    }
}

impl PemFiles {
    /// The bytes of `path` (at most `limit`), the setting `key`'s file.
    pub(crate) fn read(&mut self, key: &str, path: &Path, limit: u64) -> Result<Vec<u8>, String> {
        let bytes = read_bounded(path, limit).map_err(|e| format!("{key}: {e}"))?;
        self.digest.update(&(bytes.len() as u64).to_le_bytes());
        self.digest.update(&bytes);
        Ok(bytes)
    }

    /// The certificates in `path`: at least one.
    pub(crate) fn certificates(
        &mut self,
        key: &str,
        path: &Path,
    ) -> Result<Vec<CertificateDer<'static>>, String> {
        let bytes = self.read(key, path, PEM_LIMIT)?;
        let certificates = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{key} {}: {e}", path.display()))?;
        if certificates.is_empty() {
            return Err(format!(
                "{key} {}: no PEM certificate in it",
                path.display()
            ));
        }
        Ok(certificates)
    }

    /// The private key in `path`.
    pub(crate) fn private_key(
        &mut self,
        key: &str,
        path: &Path,
    ) -> Result<PrivateKeyDer<'static>, String> {
        let bytes = self.read(key, path, PEM_LIMIT)?;
        PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| format!("{key} {}: {e}", path.display()))
    }

    /// The certificates in `path` as trust anchors.
    pub(crate) fn roots(
        &mut self,
        key: &str,
        path: &Path,
    ) -> Result<rustls::RootCertStore, String> {
        let mut roots = rustls::RootCertStore::empty();
        for certificate in self.certificates(key, path)? {
            roots
                .add(certificate)
                .map_err(|e| format!("{key} {}: {e}", path.display()))?;
        }
        Ok(roots)
    }

    /// The SHA-256 of everything read, in hex.
    pub(crate) fn sha256(self) -> String {
        self.digest
            .finish()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
