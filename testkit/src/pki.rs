//! Test certificates: a test CA standing in for the public PKI, and leaves for
//! the fake internet's host names.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A CA and the PEM of its certificate.
pub struct TestCa {
    pub cert_pem: String,
    pub key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn validity(params: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(30);
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params);
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-signed CA");
        let key_pem = key.serialize_pem();
        Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
            key_pem,
        }
    }

    /// The CA kept in `dir` (made there the first time, and again when it
    /// has less than a week left): a CA that stays the same across runs, for
    /// tests whose images are built with it and should stay cached.
    pub fn cached(dir: &std::path::Path, name: &str) -> Self {
        let (cert_path, key_path) = (Self::cached_cert(dir), dir.join("ca.key"));
        let fresh = std::fs::metadata(&cert_path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < std::time::Duration::from_secs(23 * 86400));
        if fresh {
            if let (Ok(cert_pem), Ok(key_pem)) = (
                std::fs::read_to_string(&cert_path),
                std::fs::read_to_string(&key_path),
            ) {
                if let Ok(key) = KeyPair::from_pem(&key_pem) {
                    if let Ok(issuer) = Issuer::from_ca_cert_pem(&cert_pem, key) {
                        return Self {
                            cert_pem,
                            key_pem,
                            issuer,
                        };
                    }
                }
            }
        }
        let ca = Self::new(name);
        std::fs::create_dir_all(dir).expect("the test CA's directory");
        std::fs::write(&cert_path, &ca.cert_pem).expect("writing the test CA");
        std::fs::write(&key_path, &ca.key_pem).expect("writing the test CA's key");
        ca
    }

    /// Where [`Self::cached`] keeps the certificate of the CA in `dir`.
    pub fn cached_cert(dir: &std::path::Path) -> std::path::PathBuf {
        dir.join("ca.pem")
    }

    /// A server certificate for `names`: (certificate PEM, key PEM).
    pub fn leaf(&self, names: &[&str]) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("names");
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("test"));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        validity(&mut params);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("leaf");
        (cert.pem(), key.serialize_pem())
    }
}
