//! sha256 digests (`sha256:<64 hex>`) and a reader that hashes what passes through it.

use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// The hex part of a `sha256:<hex>` digest, if it is one (64 lower-case hex characters).
pub fn sha256_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(hex)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// Wraps a reader and hashes every byte read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Reads the rest of the stream (so the digest covers all of it) and returns
    /// (`sha256:<hex>`, bytes read, the inner reader).
    pub fn finish(mut self) -> io::Result<(String, u64, R)> {
        io::copy(&mut self, &mut io::sink())?;
        let digest = format!("sha256:{}", hex(&self.hasher.finalize()));
        Ok((digest, self.count, self.inner))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_reader_covers_unread_tail() {
        let data = b"hello world".to_vec();
        let mut r = HashingReader::new(&data[..]);
        let mut first = [0u8; 5];
        r.read_exact(&mut first).unwrap();
        let (d, n, _) = r.finish().unwrap();
        assert_eq!(n, 11);
        assert_eq!(d, sha256(&data));
        assert_eq!(
            d,
            "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(sha256_hex(&d), Some(&d[7..]));
        assert_eq!(sha256_hex("sha256:abc"), None);
    }
}
