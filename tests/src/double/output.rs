//! How Apple's CLI prints JSON (Foundation's encoder) and dates.

use serde_json::Value;

/// Foundation's pretty JSON: two-space indent, `"key" : value`, sorted keys, `/` escaped.
struct FoundationPretty<'a> {
    inner: serde_json::ser::PrettyFormatter<'a>,
}

impl serde_json::ser::Formatter for FoundationPretty<'_> {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.inner.begin_array(w)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.inner.end_array(w)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.inner.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.inner.end_array_value(w)
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.inner.begin_object(w)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.inner.end_object(w)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.inner.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b" : ")
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.inner.end_object_value(w)
    }
}

/// Pretty output as `inspect` prints it.
pub fn pretty(v: &Value) -> String {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut buf,
        FoundationPretty {
            inner: serde_json::ser::PrettyFormatter::with_indent(b"  "),
        },
    );
    serde::Serialize::serialize(v, &mut ser).expect("JSON serializes");
    // Slashes only occur inside strings, where Foundation escapes them.
    String::from_utf8(buf).expect("UTF-8").replace('/', "\\/")
}

/// Compact output as `ls --format json` prints it (sorted keys, `/` escaped).
pub fn compact(v: &Value) -> String {
    serde_json::to_string(v)
        .expect("JSON serializes")
        .replace('/', "\\/")
}

/// Docker's RFC 3339 with nanoseconds → ISO-8601 seconds, as Foundation writes them.
pub fn iso(docker_time: &str) -> String {
    let base = docker_time
        .split('.')
        .next()
        .unwrap_or(docker_time)
        .trim_end_matches('Z');
    format!("{base}Z")
}
