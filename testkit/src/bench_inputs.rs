//! What `bottlebar-bench` sends and holds: its upload bodies and the secrets
//! its sidecar is given.

/// Kinds of upload body.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum UploadBody {
    /// Source text in JSON, with the hex and base64 runs that make the
    /// scanner look closer (what the committed figures measure).
    Json,
    /// One base64 run, as an image in a JSON message is: no punctuation,
    /// so the scanner holds back its widest window between pieces.
    Base64,
}

/// A request body an agent might send, `kib` KiB of it.
pub fn upload_body(kind: UploadBody, kib: usize) -> Vec<u8> {
    if let UploadBody::Base64 = kind {
        use base64::Engine as _;
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let noise: Vec<u8> = (0..kib * 768)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        return base64::engine::general_purpose::STANDARD
            .encode(noise)
            .into_bytes();
    }
    let line = br#"{"path":"src/lib.rs","text":"fn main() {\n    println!(\"hello\");\n}\n","digest":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","blob":"aGVsbG8gd29ybGQsIHRoaXMgaXMgYSB0ZXN0IG9mIHRoZSBzY2FubmVy"}
"#;
    line.iter().copied().cycle().take(kib * 1024).collect()
}

/// The sidecar's secrets file holding the first `count` of the bench's
/// secrets (`bottlebar-bench --secrets`).
pub fn held_secrets(count: u8) -> serde_json::Value {
    let values = [
        "bench-secret-value-0123456789",
        "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdef",
        "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij",
        "AKIAIOSFODNN7EXAMPLE",
    ];
    let held: Vec<_> = values
        .iter()
        .take(usize::from(count))
        .enumerate()
        .map(|(i, v)| serde_json::json!({"name": format!("k{i}"), "value": v}))
        .collect();
    serde_json::json!({ "secrets": held })
}
