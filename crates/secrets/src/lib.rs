//! Sealing of stored secrets (access secret keys, connection credentials) and the keys derived
//! from the server's master key.
//!
//! Sealed values are `version || nonce || ciphertext+tag` under XChaCha20-Poly1305, so a
//! tampered or foreign value fails to open instead of decrypting to garbage.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

/// Why a sealed value could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("sealed value cannot be opened with this key")]
pub struct OpenError;

/// Seals and opens secrets under one 256-bit master key.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    master: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    pub fn new(master: [u8; 32]) -> Self {
        Sealer { cipher: XChaCha20Poly1305::new(&master.into()), master }
    }

    /// A fresh random master key.
    pub fn generate_key() -> [u8; 32] {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        key
    }

    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), plaintext)
            .expect("encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != VERSION {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
        self.cipher.decrypt(XNonce::from_slice(nonce), ciphertext).map_err(|_| OpenError)
    }

    /// A key for one purpose (e.g. signing tokens), so the master key is never used twice.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.master).expect("any key length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key() {
        let a = Sealer::new(Sealer::generate_key());
        let b = Sealer::new(Sealer::generate_key());
        let sealed = a.seal(b"secret");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(a.open(&sealed).unwrap(), b"secret");
        assert!(b.open(&sealed).is_err());

        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(a.open(&tampered).is_err());
        assert!(a.open(b"short").is_err());
    }

    #[test]
    fn derived_keys_differ_by_purpose() {
        let s = Sealer::new([7; 32]);
        assert_ne!(s.derive("token"), s.derive("other"));
        assert_eq!(s.derive("token"), s.derive("token"));
    }
}
