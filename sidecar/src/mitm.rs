//! TLS interception: leaf certificates for the hosts the agent connects to,
//! signed by the bottle's CA.
//!
//! One leaf key serves every host, so minting a certificate is one signature;
//! certificates (and the TLS server configs built from them) are cached per
//! host, so a host's certificate is minted once, not per request.

use anyhow::{Context, Result};
use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Hosts whose server configs are kept; past this the cache starts over.
const MAX_CACHED_HOSTS: usize = 4096;
/// Validity of a minted leaf, either side of now.
const LEAF_VALID_BEFORE: time::Duration = time::Duration::days(1);
const LEAF_VALID_AFTER: time::Duration = time::Duration::days(30);

/// The bottle's CA and the leaves made from it.
pub struct Mitm {
    issuer: Issuer<'static, KeyPair>,
    leaf_key: KeyPair,
    cache: Mutex<HashMap<String, Arc<ServerConfig>>>,
    minted: AtomicU64,
}

/// The crypto provider everything TLS here uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Mitm {
    /// Loads the bottle CA from its PEM files.
    pub fn load(cert_path: &str, key_path: &str) -> Result<Self> {
        let cert = std::fs::read_to_string(cert_path)
            .with_context(|| format!("reading the CA certificate {cert_path}"))?;
        let key = std::fs::read_to_string(key_path)
            .with_context(|| format!("reading the CA key {key_path}"))?;
        let key = KeyPair::from_pem(&key).context("the CA key is not a PEM private key")?;
        let issuer = Issuer::from_ca_cert_pem(&cert, key)
            .context("the CA certificate cannot be used to sign")?;
        let leaf_key = KeyPair::generate().context("generating the leaf key")?;
        Ok(Self {
            issuer,
            leaf_key,
            cache: Mutex::new(HashMap::new()),
            minted: AtomicU64::new(0),
        })
    }

    /// How many leaf certificates were minted so far.
    pub fn minted(&self) -> u64 {
        self.minted.load(Ordering::Relaxed)
    }

    /// The TLS server config presenting a certificate for `host`, offering
    /// HTTP/2 and HTTP/1.1 by ALPN.
    pub fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>> {
        if let Some(c) = self.cache.lock().unwrap().get(host) {
            return Ok(c.clone());
        }
        let cert = self.mint(host)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let config = Arc::new(config);
        let mut cache = self.cache.lock().unwrap();
        if cache.len() >= MAX_CACHED_HOSTS {
            cache.clear();
        }
        cache.insert(host.to_string(), config.clone());
        Ok(config)
    }

    fn mint(&self, host: &str) -> Result<CertificateDer<'static>> {
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![match host.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                host.try_into()
                    .with_context(|| format!("`{host}` is not a DNS name"))?,
            ),
        }];
        params.distinguished_name.push(DnType::CommonName, host);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - LEAF_VALID_BEFORE;
        params.not_after = now + LEAF_VALID_AFTER;
        let cert = params
            .signed_by(&self.leaf_key, &self.issuer)
            .context("signing the leaf certificate")?;
        self.minted.fetch_add(1, Ordering::Relaxed);
        Ok(cert.der().clone())
    }
}
