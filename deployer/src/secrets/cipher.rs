//! The SOPS value cipher: AES-256-GCM with a 32-byte IV and a 16-byte tag, written as
//! `ENC[AES256_GCM,data:<b64>,iv:<b64>,tag:<b64>,type:<type>]`, the additional data being
//! the value's key path (`"NAME:"`, `":"` for a top-level comment, or `sops_lastmodified`
//! for the MAC).

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::AesGcm;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rand::RngCore;
use zeroize::Zeroizing;

/// AES-256-GCM with the 32-byte nonce sops uses.
type SopsGcm = AesGcm<Aes256, U32>;

const IV_LEN: usize = 32;
const TAG_LEN: usize = 16;
const PREFIX: &str = "ENC[AES256_GCM,";

/// The 32-byte key that encrypts every value of one file.
pub(crate) struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    /// A fresh random key.
    pub(crate) fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        Self(key)
    }

    /// A key from unwrapped bytes; `None` unless exactly 32 bytes.
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(arr)))
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn gcm(&self) -> SopsGcm {
        SopsGcm::new(GenericArray::from_slice(self.0.as_ref()))
    }
}

/// A parsed `ENC[...]` value.
pub(crate) struct EncValue {
    data: Vec<u8>,
    iv: [u8; IV_LEN],
    tag: [u8; TAG_LEN],
    /// The sops type name: `str`, `comment`, `int`, ...
    pub(crate) kind: String,
}

/// Whether `s` looks like an encrypted value (used for comments, which sops may leave clear).
pub(crate) fn looks_encrypted(s: &str) -> bool {
    s.starts_with(PREFIX)
}

/// Parses an `ENC[...]` value strictly. The error is a short reason without the value.
pub(crate) fn parse(s: &str) -> Result<EncValue, &'static str> {
    let inner = s
        .strip_prefix(PREFIX)
        .ok_or("it does not start with ENC[AES256_GCM,")?
        .strip_suffix(']')
        .ok_or("it does not end with ]")?;
    let mut parts = inner.split(',');
    let mut field = |name: &'static str| -> Result<&str, &'static str> {
        parts
            .next()
            .and_then(|p| p.strip_prefix(name))
            .ok_or("its fields are not data:,iv:,tag:,type: in that order")
    };
    let data = field("data:")?;
    let iv = field("iv:")?;
    let tag = field("tag:")?;
    let kind = field("type:")?;
    if parts.next().is_some() {
        return Err("it has extra fields");
    }
    if data.is_empty() || kind.is_empty() {
        return Err("its data or type is empty");
    }
    let data = B64
        .decode(data)
        .map_err(|_| "its data is not valid base64")?;
    let iv = B64.decode(iv).map_err(|_| "its iv is not valid base64")?;
    let tag = B64.decode(tag).map_err(|_| "its tag is not valid base64")?;
    let iv: [u8; IV_LEN] = iv.try_into().map_err(|_| "its iv is not 32 bytes")?;
    let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| "its tag is not 16 bytes")?;
    Ok(EncValue {
        data,
        iv,
        tag,
        kind: kind.to_owned(),
    })
}

/// Decrypts and authenticates; `None` when the tag does not verify.
pub(crate) fn decrypt(key: &DataKey, enc: &EncValue, aad: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(enc.data.clone());
    key.gcm()
        .decrypt_in_place_detached(
            GenericArray::from_slice(&enc.iv),
            aad,
            &mut buf,
            GenericArray::from_slice(&enc.tag),
        )
        .ok()?;
    Some(buf)
}

/// Encrypts `plain` with a fresh IV and returns the `ENC[...]` text.
pub(crate) fn encrypt(
    key: &DataKey,
    plain: &[u8],
    aad: &[u8],
    kind: &str,
) -> Result<String, aes_gcm::Error> {
    let mut iv = [0u8; IV_LEN];
    rand::rngs::OsRng.fill_bytes(&mut iv);
    let mut buf = Zeroizing::new(plain.to_vec());
    let tag = key
        .gcm()
        .encrypt_in_place_detached(GenericArray::from_slice(&iv), aad, &mut buf)?;
    Ok(format!(
        "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{kind}]",
        B64.encode(buf.as_slice()),
        B64.encode(iv),
        B64.encode(tag)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_aad_binding() {
        let key = DataKey::generate();
        let text = encrypt(&key, b"hello", b"A:", "str").unwrap();
        let enc = parse(&text).unwrap();
        assert_eq!(enc.kind, "str");
        assert_eq!(decrypt(&key, &enc, b"A:").unwrap().as_slice(), b"hello");
        assert!(decrypt(&key, &enc, b"B:").is_none());
        assert!(decrypt(&DataKey::generate(), &enc, b"A:").is_none());
    }

    #[test]
    fn parse_rejects_broken_syntax() {
        let key = DataKey::generate();
        let good = encrypt(&key, b"v", b"A:", "str").unwrap();
        for bad in [
            "ENC[AES256_GCM,data:abc",
            "ENC[AES256_GCM,iv:AAAA,data:AAAA,tag:AAAA,type:str]",
            "ENC[AES256_GCM,data:!!!,iv:AAAA,tag:AAAA,type:str]",
            "ENC[AES256_GCM,data:AAAA,iv:AAAA,tag:AAAA,type:str]",
            "ENC[AES256_GCM,data:,iv:AAAA,tag:AAAA,type:str]",
            "plain",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse(&format!("{good}x")).is_err());
        assert!(parse(&good.replace(",type:str]", ",type:str,x:y]")).is_err());
    }
}
