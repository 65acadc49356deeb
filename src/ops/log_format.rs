//! The two log line formats, with Prometheus' key names (`time`, `level`, `source`, `msg`):
//! logfmt for text (what Loki's `| logfmt` and `grep` read) and JSON.
//!
//! Values come from outside (peer names from a peers file, addresses, error texts), so
//! every value is escaped in both formats: a logfmt value with a space, a quote, `=` or
//! any control character is quoted with `\n`, `\"`, `\u{1b}`… inside, and JSON is written
//! by serde_json. No value can end a line or repaint a terminal (issue 19: a peer name
//! with a newline forged a whole log line).

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::outside::text::needs_escape;

/// A log line's format.
#[derive(Clone, Copy)]
pub(crate) enum LineFormat {
    /// `time=… level=info source=server.rs:120 msg="…" key=value…`
    Logfmt,
    /// `{"time":"…","level":"info","source":"server.rs:120","msg":"…","key":value…}`
    Json,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let line = Line::of(event);
        let level = level_name(event.metadata().level());
        match self {
            LineFormat::Logfmt => {
                write!(writer, "time={}", line.time)?;
                if writer.has_ansi_escapes() {
                    write!(writer, " level=\x1b[{}m{level}\x1b[0m", level_colour(level))?;
                } else {
                    write!(writer, " level={level}")?;
                }
                write!(writer, " source=")?;
                logfmt_value(&mut writer, &line.source)?;
                write!(writer, " msg=")?;
                logfmt_value(&mut writer, &line.message)?;
                for (key, value) in &line.fields {
                    write!(writer, " {key}=")?;
                    logfmt_value(&mut writer, &value.to_string())?;
                }
                writeln!(writer)
            }
            LineFormat::Json => {
                // Written key by key, so the keys keep Prometheus' order.
                let mut text = String::from("{");
                let pairs = [
                    ("time", Value::Text(line.time)),
                    ("level", Value::Text(level.to_owned())),
                    ("source", Value::Text(line.source)),
                    ("msg", Value::Text(line.message)),
                ];
                for (index, (key, value)) in pairs.into_iter().chain(line.fields).enumerate() {
                    if index > 0 {
                        text.push(',');
                    }
                    let key = serde_json::to_string(key).map_err(|_| fmt::Error)?;
                    let value =
                        serde_json::to_string(&value.into_json()).map_err(|_| fmt::Error)?;
                    text.push_str(&key);
                    text.push(':');
                    text.push_str(&value);
                }
                text.push('}');
                writeln!(writer, "{}", escape_remaining_controls(&text))
            }
        }
    }
}

/// One event's parts, gathered once for either format.
struct Line {
    time: String,
    source: String,
    message: String,
    fields: Vec<(&'static str, Value)>,
}

/// A field's value: numbers and booleans stay typed in JSON.
enum Value {
    Text(String),
    Integer(i128),
    Float(f64),
    Bool(bool),
}

impl Value {
    fn into_json(self) -> serde_json::Value {
        match self {
            Value::Text(text) => text.into(),
            Value::Integer(n) => i64::try_from(n)
                .map(Into::into)
                .unwrap_or_else(|_| n.to_string().into()),
            Value::Float(x) => serde_json::Number::from_f64(x)
                .map(serde_json::Value::Number)
                .unwrap_or_else(|| x.to_string().into()),
            Value::Bool(b) => b.into(),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(text) => f.write_str(text),
            Value::Integer(n) => write!(f, "{n}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl Line {
    fn of(event: &Event<'_>) -> Line {
        let mut time = String::new();
        // Writes RFC 3339 in UTC with microseconds; it cannot fail into a String.
        let _ = SystemTime.format_time(&mut Writer::new(&mut time));
        let metadata = event.metadata();
        let file = metadata.file().unwrap_or(metadata.target());
        let file = file.rsplit('/').next().unwrap_or(file);
        let source = match metadata.line() {
            Some(line) => format!("{file}:{line}"),
            None => file.to_owned(),
        };
        let mut line = Line {
            time,
            source,
            message: String::new(),
            fields: Vec::new(),
        };
        event.record(&mut line);
        line
    }

    fn push(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields.push((field.name(), value));
        }
    }
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, Value::Text(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, Value::Text(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::Integer(value.into()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Value::Integer(value.into()));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.push(field, Value::Integer(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, Value::Float(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field, Value::Text(value.to_string()));
    }
}

/// `json` with the control characters serde_json leaves as they are (DEL, C1 — NEL
/// among them — and the Unicode line separators) written as `\u` escapes. Such characters
/// can only stand inside JSON strings, where the escape means the same.
fn escape_remaining_controls(json: &str) -> std::borrow::Cow<'_, str> {
    if !json.chars().any(needs_escape) {
        return std::borrow::Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if needs_escape(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Prometheus' level names.
fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

fn level_colour(level: &str) -> u8 {
    match level {
        "error" => 31,
        "warn" => 33,
        "info" => 32,
        _ => 34,
    }
}

/// `value` as one logfmt value: bare when it is plain, else quoted with `"` and `\`
/// escaped and every control character written as `\n`, `\r`, `\t` or `\u{…}`.
fn logfmt_value(out: &mut impl fmt::Write, value: &str) -> fmt::Result {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c == ' ' || c == '=' || c == '"' || c == '\\' || needs_escape(c));
    if plain {
        return out.write_str(value);
    }
    out.write_char('"')?;
    for c in value.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if needs_escape(c) => write!(out, "\\u{{{:x}}}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(value: &str) -> String {
        let mut out = String::new();
        logfmt_value(&mut out, value).unwrap();
        out
    }

    #[test]
    fn logfmt_values_are_bare_only_when_plain() {
        assert_eq!(quoted("nova-a"), "nova-a");
        assert_eq!(quoted("127.0.0.1:9478"), "127.0.0.1:9478");
        assert_eq!(quoted(""), "\"\"");
        assert_eq!(quoted("two words"), "\"two words\"");
        assert_eq!(quoted("a=b"), "\"a=b\"");
        assert_eq!(quoted(r#"say "hi" \o/"#), r#""say \"hi\" \\o/""#);
        assert_eq!(
            quoted("x\ntime=2026 level=error msg=forged\u{1b}[31m\u{7}"),
            r#""x\ntime=2026 level=error msg=forged\u{1b}[31m\u{7}""#
        );
    }

    /// Every line written by either format, as a test sees it.
    fn lines_of(format: &str, log: impl FnOnce()) -> Vec<String> {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let written = buffer.clone();
        let builder = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || written.clone());
        let format = match format {
            "json" => LineFormat::Json,
            _ => LineFormat::Logfmt,
        };
        let dispatch = tracing::Dispatch::new(builder.event_format(format).finish());
        tracing::dispatcher::with_default(&dispatch, log);
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_value_from_outside_cannot_forge_a_line_in_either_format() {
        let name =
            "evil\n2026-12-03T00:00:00Z level=error msg=forged\u{1b}]0;owned\u{7}\u{85}\u{2028}";
        for format in ["logfmt", "json"] {
            let lines = lines_of(format, || {
                tracing::warn!(peer = name, attempts = 3, "peer {name} unreachable");
            });
            assert_eq!(lines.len(), 1, "{format}: {lines:?}");
            let line = &lines[0];
            assert!(
                !line.contains('\u{1b}') && !line.contains('\u{7}'),
                "{line}"
            );
            if format == "json" {
                let object: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(object["peer"], name);
                assert_eq!(object["attempts"], 3);
                assert_eq!(object["level"], "warn");
                assert_eq!(object["msg"], format!("peer {name} unreachable"));
                assert!(object["source"]
                    .as_str()
                    .unwrap()
                    .starts_with("log_format.rs:"));
                assert!(object["time"].as_str().unwrap().ends_with('Z'));
                assert!(
                    line.starts_with(r#"{"time":"#)
                        && line.contains(r#","level":"warn","source":"#)
                );
            } else {
                assert!(line.starts_with("time="), "{line}");
                assert!(line.contains(" level=warn source=log_format.rs:"), "{line}");
                assert!(line.ends_with(" attempts=3"), "{line}");
                assert!(line.contains(r#" peer="evil\n2026"#), "{line}");
            }
        }
    }
}
