//! Validation stages: each part of a [`RawManifest`](super::raw::RawManifest)
//! checked and turned into its part of the [`Manifest`](super::Manifest),
//! with errors naming the key and its position.

use super::raw::*;
use super::*;
use bottlebar_policy::selftest::LeakClass;
use bottlebar_policy::supervise::SuperviseConfig;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use toml::Spanned;

/// `backend`: `docker` or `apple`.
pub(super) fn backend(
    cx: &Ctx<'_>,
    b: Option<&Spanned<String>>,
) -> Result<Option<BackendKind>, ManifestError> {
    let Some(b) = b else { return Ok(None) };
    BackendKind::parse(b.get_ref()).map(Some).ok_or_else(|| {
        cx.err(
            Some(b.span()),
            "backend",
            format!(
                "unknown backend `{}`; expected `docker` or `apple`",
                b.get_ref()
            ),
        )
    })
}

/// `agent.command`: non-empty arguments without NUL bytes.
pub(super) fn agent_command(
    cx: &Ctx<'_>,
    command: &[Spanned<String>],
) -> Result<Vec<String>, ManifestError> {
    let mut out = Vec::with_capacity(command.len());
    for (i, a) in command.iter().enumerate() {
        if a.get_ref().is_empty() || a.get_ref().contains('\0') {
            return Err(cx.err(
                Some(a.span()),
                &format!("agent.command[{i}]"),
                "arguments must be non-empty and contain no NUL byte",
            ));
        }
        out.push(a.get_ref().clone());
    }
    Ok(out)
}

/// `egress`: each rule valid, each injection naming a declared secret.
pub(super) fn egress(
    cx: &Ctx<'_>,
    rules: &[Spanned<EgressRule>],
    secrets: &[SecretSpec],
) -> Result<Vec<EgressRule>, ManifestError> {
    let mut egress = Vec::with_capacity(rules.len());
    for (i, r) in rules.iter().enumerate() {
        let rule = r.get_ref().clone();
        let key = format!("egress[{i}]");
        rule.validate()
            .map_err(|e| cx.err(Some(r.span()), &key, e.to_string()))?;
        if let Some(inj) = &rule.inject {
            if !secrets.iter().any(|s| s.name == inj.secret) {
                return Err(cx.err(
                    Some(r.span()),
                    &format!("{key}.inject.secret"),
                    format!(
                        "no secret named `{}`; declare it as [secrets.{}]",
                        inj.secret, inj.secret
                    ),
                ));
            }
        }
        egress.push(rule);
    }
    Ok(egress)
}

/// `dns`: IP addresses.
pub(super) fn dns(cx: &Ctx<'_>, dns: &[Spanned<String>]) -> Result<Vec<String>, ManifestError> {
    dns.iter()
        .enumerate()
        .map(|(i, d)| {
            d.get_ref()
                .parse::<std::net::IpAddr>()
                .map(|ip| ip.to_string())
                .map_err(|_| {
                    cx.err(
                        Some(d.span()),
                        &format!("dns[{i}]"),
                        format!("`{}` is not an IP address", d.get_ref()),
                    )
                })
        })
        .collect()
}

/// `[hosts]`: host names (no wildcard, no IP literal) pinned to addresses.
pub(super) fn hosts(
    cx: &Ctx<'_>,
    hosts: &BTreeMap<String, Spanned<String>>,
) -> Result<BTreeMap<String, String>, ManifestError> {
    let mut out = BTreeMap::new();
    for (name, ip) in hosts {
        let key = format!("hosts.{name}");
        let probe = EgressRule {
            host: name.clone(),
            ports: vec![],
            methods: vec![],
            paths: vec![],
            inject: None,
            dlp: Default::default(),
        };
        if name.starts_with("*.")
            || bottlebar_policy::is_ip_literal(name)
            || probe.validate().is_err()
        {
            return Err(cx.err(
                Some(ip.span()),
                &key,
                format!("`{name}` is not a host name (lowercase, no wildcard)"),
            ));
        }
        let addr = ip.get_ref().parse::<std::net::IpAddr>().map_err(|_| {
            cx.err(
                Some(ip.span()),
                &key,
                format!("`{}` is not an IP address", ip.get_ref()),
            )
        })?;
        out.insert(name.clone(), addr.to_string());
    }
    Ok(out)
}

/// `allow_private_ranges`: CIDR blocks.
pub(super) fn private_ranges(
    cx: &Ctx<'_>,
    ranges: &[Spanned<String>],
) -> Result<Vec<String>, ManifestError> {
    let mut out = Vec::with_capacity(ranges.len());
    for (i, r) in ranges.iter().enumerate() {
        bottlebar_policy::Cidr::parse(r.get_ref())
            .map_err(|e| cx.err(Some(r.span()), &format!("allow_private_ranges[{i}]"), e))?;
        out.push(r.get_ref().clone());
    }
    Ok(out)
}

/// `supervise = true`, or a `[supervise]` table: whether the agent gets the
/// supervise endpoint, and its settings, each within bounds.
pub(super) fn supervise(
    cx: &Ctx<'_>,
    value: Option<&Spanned<toml::Value>>,
) -> Result<(bool, SuperviseConfig), ManifestError> {
    let mut cfg = SuperviseConfig::default();
    let Some(v) = value else {
        return Ok((false, cfg));
    };
    let table = match v.get_ref() {
        toml::Value::Boolean(on) => return Ok((*on, cfg)),
        toml::Value::Table(t) => t,
        _ => {
            return Err(cx.err(
                Some(v.span()),
                "supervise",
                "`supervise` is `true`, `false`, or a `[supervise]` table",
            ))
        }
    };
    let err =
        |key: &str, message: String| cx.err(Some(v.span()), &format!("supervise.{key}"), message);
    let number =
        |key: &str, range: std::ops::RangeInclusive<u64>| -> Result<Option<u64>, ManifestError> {
            match table.get(key) {
                None => Ok(None),
                Some(toml::Value::Integer(n)) if *n >= 0 && range.contains(&(*n as u64)) => {
                    Ok(Some(*n as u64))
                }
                Some(other) => Err(err(
                    key,
                    format!(
                        "`{other}` is not a number from {} to {}",
                        range.start(),
                        range.end()
                    ),
                )),
            }
        };
    let flag = |key: &str| -> Result<Option<bool>, ManifestError> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(*b)),
            Some(other) => Err(err(key, format!("`{other}` is not `true` or `false`"))),
        }
    };
    const KEYS: &[&str] = &[
        "enabled",
        "hold_denied",
        "hold_seconds",
        "request_timeout",
        "max_pending",
        "per_minute",
        "allow_wildcards",
    ];
    if let Some(k) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(err(
            k,
            format!("unknown key `{k}`; `[supervise]` takes {}", KEYS.join(", ")),
        ));
    }
    let enabled = flag("enabled")?.unwrap_or(true);
    cfg.hold_denied = flag("hold_denied")?.unwrap_or(cfg.hold_denied);
    cfg.allow_wildcards = flag("allow_wildcards")?.unwrap_or(cfg.allow_wildcards);
    cfg.hold_seconds = number("hold_seconds", 1..=600)?.unwrap_or(cfg.hold_seconds);
    cfg.request_timeout_seconds =
        number("request_timeout", 5..=900)?.unwrap_or(cfg.request_timeout_seconds);
    cfg.max_pending = number("max_pending", 1..=50)?.map_or(cfg.max_pending, |n| n as usize);
    cfg.per_minute = number("per_minute", 1..=120)?.map_or(cfg.per_minute, |n| n as usize);
    Ok((enabled, cfg))
}

/// `isolation.accept_leaks`: leak classes, each once.
pub(super) fn accept_leaks(
    cx: &Ctx<'_>,
    classes: &[Spanned<String>],
) -> Result<Vec<LeakClass>, ManifestError> {
    let mut out = Vec::new();
    for c in classes {
        let class = LeakClass::parse(c.get_ref()).ok_or_else(|| {
            cx.err(
                Some(c.span()),
                "isolation.accept_leaks",
                format!(
                    "`{}` is not a leak class; the classes are {}",
                    c.get_ref(),
                    LeakClass::ALL.map(|c| format!("`{c}`")).join(", ")
                ),
            )
        })?;
        if !out.contains(&class) {
            out.push(class);
        }
    }
    Ok(out)
}

pub(super) fn env(
    cx: &Ctx<'_>,
    env: &BTreeMap<String, Spanned<String>>,
) -> Result<BTreeMap<String, String>, ManifestError> {
    let mut out = BTreeMap::new();
    for (k, v) in env {
        let key = format!("env.{k}");
        let span = Some(v.span());
        if !valid_env_name(k) {
            return Err(cx.err(span, &key, format!("`{k}` is not a valid environment variable name (letters, digits, `_`; not starting with a digit)")));
        }
        if RESERVED_ENV.contains(&k.as_str()) {
            return Err(cx.err(
                span,
                &key,
                format!(
                    "`{k}` is set by Bottlebar (proxy and CA settings) and cannot be overridden"
                ),
            ));
        }
        if v.get_ref().contains('\0') {
            return Err(cx.err(span, &key, "value contains a NUL byte"));
        }
        out.insert(k.clone(), v.get_ref().clone());
    }
    Ok(out)
}

fn valid_env_name(k: &str) -> bool {
    k.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(super) fn secrets(
    cx: &Ctx<'_>,
    secrets: &BTreeMap<String, Spanned<RawSecret>>,
    env: &BTreeMap<String, String>,
) -> Result<Vec<SecretSpec>, ManifestError> {
    let mut out = Vec::new();
    let mut placeholders = BTreeSet::new();
    for (name, raw) in secrets {
        let key = format!("secrets.{name}");
        let span = Some(raw.span());
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(cx.err(
                span,
                &key,
                format!("secret name `{name}` must be lowercase letters, digits, `-` or `_`"),
            ));
        }
        let r = raw.get_ref();
        let source = match (&r.env, &r.file) {
            (None, None) if r.keychain => SecretSource::Keychain,
            (Some(e), None) if !r.keychain => {
                if !valid_env_name(e.get_ref()) {
                    return Err(cx.err(Some(e.span()), &format!("{key}.env"), format!("`{}` is not an environment variable name", e.get_ref())));
                }
                SecretSource::Env(e.get_ref().clone())
            }
            (None, Some(f)) if !r.keychain => {
                let p = Path::new(f.get_ref());
                if !p.is_absolute() {
                    return Err(cx.err(Some(f.span()), &format!("{key}.file"), format!("`{}` must be an absolute path", f.get_ref())));
                }
                SecretSource::File(p.to_path_buf())
            }
            _ => return Err(cx.err(span, &key, "give exactly one of `env` (a variable of the launching process), `file` (an absolute path) or `keychain = true` (the OS keychain)")),
        };
        let placeholder_env = match &r.placeholder_env {
            None => None,
            Some(p) => {
                let v = p.get_ref();
                let pkey = format!("{key}.placeholder_env");
                if !valid_env_name(v) {
                    return Err(cx.err(
                        Some(p.span()),
                        &pkey,
                        format!("`{v}` is not an environment variable name"),
                    ));
                }
                if RESERVED_ENV.contains(&v.as_str())
                    || env.contains_key(v)
                    || !placeholders.insert(v.clone())
                {
                    return Err(cx.err(
                        Some(p.span()),
                        &pkey,
                        format!("`{v}` is already set (by Bottlebar, [env] or another secret)"),
                    ));
                }
                Some(v.clone())
            }
        };
        out.push(SecretSpec {
            name: name.clone(),
            source,
            placeholder_env,
        });
    }
    Ok(out)
}

pub(super) fn extra_roots(
    cx: &Ctx<'_>,
    roots: &[Spanned<String>],
) -> Result<Vec<PathBuf>, ManifestError> {
    let mut out = Vec::new();
    for (i, r) in roots.iter().enumerate() {
        let key = format!("tls.extra_roots[{i}]");
        let p = Path::new(r.get_ref());
        if !p.is_absolute() {
            return Err(cx.err(
                Some(r.span()),
                &key,
                format!("`{}` must be an absolute path", r.get_ref()),
            ));
        }
        let text = std::fs::read_to_string(p).map_err(|e| {
            cx.err(
                Some(r.span()),
                &key,
                format!("cannot read `{}`: {e}", p.display()),
            )
        })?;
        if !text.contains("-----BEGIN CERTIFICATE-----") {
            return Err(cx.err(
                Some(r.span()),
                &key,
                format!("`{}` holds no PEM certificate", p.display()),
            ));
        }
        out.push(p.to_path_buf());
    }
    Ok(out)
}

pub(super) fn resources(cx: &Ctx<'_>, r: &RawResources) -> Result<Resources, ManifestError> {
    let cpus = match &r.cpus {
        None => None,
        Some(c) => {
            let n = *c.get_ref();
            if !(1..=MAX_CPUS).contains(&n) {
                return Err(cx.err(
                    Some(c.span()),
                    "resources.cpus",
                    format!("must be a whole number from 1 to {MAX_CPUS}, got {n}"),
                ));
            }
            Some(n as u32)
        }
    };
    let memory_mib = match &r.memory {
        None => None,
        Some(m) => {
            let mib = parse_memory_mib(m.get_ref()).ok_or_else(|| {
                cx.err(
                    Some(m.span()),
                    "resources.memory",
                    format!(
                        "`{}` is not a size; write a whole number with a unit: `512m`, `4g`",
                        m.get_ref()
                    ),
                )
            })?;
            if mib < MIN_MEMORY_MIB {
                return Err(cx.err(
                    Some(m.span()),
                    "resources.memory",
                    format!("{mib} MiB is too little; at least {MIN_MEMORY_MIB}m"),
                ));
            }
            Some(mib)
        }
    };
    Ok(Resources { cpus, memory_mib })
}

/// `512m`, `4g`, `4G`, `1t` → MiB. Whole numbers only; bytes and KiB are too small to matter.
pub fn parse_memory_mib(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'm' => (&s[..s.len() - 1], 1u64),
        'g' => (&s[..s.len() - 1], 1024),
        't' => (&s[..s.len() - 1], 1024 * 1024),
        _ => return None,
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    num.parse::<u64>().ok()?.checked_mul(mult)
}
