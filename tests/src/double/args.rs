//! Strict command-line parsing in the manner of swift-argument-parser: an
//! unknown option or a missing or bad value is a usage error (exit 64,
//! `Error: …` on stderr); positionals are collected in order; `--` and the
//! first positional after an image end option parsing where the real CLI does.

use super::Failure;

/// One option a command accepts.
#[derive(Clone, Copy)]
pub struct Opt {
    pub long: &'static str,
    pub short: Option<char>,
    pub takes_value: bool,
}

pub const fn flag(long: &'static str, short: Option<char>) -> Opt {
    Opt {
        long,
        short,
        takes_value: false,
    }
}

pub const fn value(long: &'static str, short: Option<char>) -> Opt {
    Opt {
        long,
        short,
        takes_value: true,
    }
}

/// Parsed options: (long name, value) in order, and positionals.
#[derive(Debug, Default)]
pub struct Parsed {
    pub opts: Vec<(String, String)>,
    pub positionals: Vec<String>,
}

impl Parsed {
    pub fn has(&self, long: &str) -> bool {
        self.opts.iter().any(|(k, _)| k == long)
    }

    pub fn all(&self, long: &str) -> Vec<String> {
        self.opts
            .iter()
            .filter(|(k, _)| k == long)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn one(&self, long: &str) -> Option<String> {
        self.all(long).pop()
    }
}

/// Parses `args` against `opts`. With `stop_at_first_positional`, everything
/// from the first positional on is positional (`run IMAGE ARGS…`, `exec ID CMD…`).
pub fn parse(
    args: &[String],
    opts: &[Opt],
    stop_at_first_positional: bool,
) -> Result<Parsed, Failure> {
    let mut out = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            out.positionals.extend(args[i + 1..].iter().cloned());
            break;
        }
        let found = if let Some(name) = a.strip_prefix("--") {
            let (name, inline) = match name.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (name, None),
            };
            let opt = opts
                .iter()
                .find(|o| o.long == name)
                .ok_or_else(|| Failure::usage(format!("Unknown option '--{name}'")))?;
            Some((opt, inline))
        } else if a.len() > 1
            && a.starts_with('-')
            && !a[1..].starts_with(|c: char| c.is_ascii_digit())
        {
            let mut chars = a[1..].chars();
            let c = chars.next().unwrap();
            let opt = opts
                .iter()
                .find(|o| o.short == Some(c))
                .ok_or_else(|| Failure::usage(format!("Unknown option '-{c}'")))?;
            let rest: String = chars.collect();
            if !opt.takes_value && !rest.is_empty() {
                // Combined short flags such as `-it`.
                out.opts.push((opt.long.to_string(), String::new()));
                let expanded: Vec<String> = rest.chars().map(|c| format!("-{c}")).collect();
                let mut tail = expanded;
                tail.extend(args[i + 1..].iter().cloned());
                let more = parse(&tail, opts, stop_at_first_positional)?;
                out.opts.extend(more.opts);
                out.positionals.extend(more.positionals);
                return Ok(out);
            }
            Some((opt, (!rest.is_empty()).then_some(rest)))
        } else {
            None
        };
        match found {
            Some((opt, inline)) => {
                if opt.takes_value {
                    let v = match inline {
                        Some(v) => v,
                        None => {
                            i += 1;
                            args.get(i).cloned().ok_or_else(|| {
                                Failure::usage(format!(
                                    "Missing value for '--{} <{}>'",
                                    opt.long, opt.long
                                ))
                            })?
                        }
                    };
                    out.opts.push((opt.long.to_string(), v));
                } else {
                    out.opts.push((opt.long.to_string(), String::new()));
                }
            }
            None => {
                out.positionals.push(a.clone());
                if stop_at_first_positional {
                    out.positionals.extend(args[i + 1..].iter().cloned());
                    break;
                }
            }
        }
        i += 1;
    }
    Ok(out)
}
