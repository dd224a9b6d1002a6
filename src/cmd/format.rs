//! How incidents, problems and events are printed: one small interface,
//! [`Formatter`], with three implementations, picked by `--output`:
//!
//! - `simple`: one line per item (a table for lists, an aligned line per
//!   event in `tail`);
//! - `extended`: a detail view per incident or problem (alerts with their
//!   key labels, timeline, root cause, related incidents, known error);
//! - `json`: the JSON as the API or the topic has it, for machines.
//!
//! Everything reads JSON values (the API's answers, the topic's events), so
//! the command line depends on the published contract only. Colour is ANSI
//! SGR, only when [`Style::color`] says so (see [`ColorChoice`]).

use std::io::{self, IsTerminal, Write};

use serde_json::Value;

/// `--output`: which [`Formatter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per incident, problem or event.
    Simple,
    /// A detail view per incident or problem.
    Extended,
    /// The JSON as received.
    Json,
}

/// `--color`: when to colour human output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// When standard output is a terminal and `NO_COLOR` is unset or empty.
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to colour output written to standard output.
    pub fn enabled(self) -> bool {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        self.resolve(io::stdout().is_terminal(), no_color)
    }

    /// The decision, given whether the output is a terminal and whether
    /// `NO_COLOR` is set (an explicit `always` wins over `NO_COLOR`).
    pub fn resolve(self, terminal: bool, no_color: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => terminal && !no_color,
        }
    }
}

/// Presentation settings shared by the human formatters.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    pub color: bool,
}

/// Prints API answers and topic events in one format.
pub trait Formatter {
    /// `GET /api/v1/incidents`: `{"incidents": [...]}`.
    fn incident_list(&mut self, list: &Value) -> io::Result<()>;
    /// One incident (the API's view: the `data` of an event).
    fn incident(&mut self, incident: &Value) -> io::Result<()>;
    /// `GET /api/v1/problems`: `{"problems": [...]}`.
    fn problem_list(&mut self, list: &Value) -> io::Result<()>;
    /// One problem.
    fn problem(&mut self, problem: &Value) -> io::Result<()>;
    /// One CloudEvent from the incidents topic: its bytes as published
    /// and their parse.
    fn event(&mut self, raw: &[u8], event: &Value) -> io::Result<()>;
}

/// The formatter for `format`, writing to `out`.
pub fn formatter<'a>(
    format: Format,
    style: Style,
    out: &'a mut dyn Write,
) -> Box<dyn Formatter + 'a> {
    match format {
        Format::Simple => Box::new(Simple { out, style }),
        Format::Extended => Box::new(Extended {
            simple: Simple { out, style },
        }),
        Format::Json => Box::new(Json { out }),
    }
}

// ---- cells and colour ----

/// A JSON value as a table cell: strings bare, null as `-`.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(x) => x.clone(),
        other => other.to_string(),
    }
}

/// `s` cut to `width` characters (an ellipsis marks the cut).
fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(width.saturating_sub(1)).collect();
        c.push('…');
        c
    }
}

/// `s` cut and padded to exactly `width` characters.
fn pad(s: &str, width: usize) -> String {
    format!("{:<width$}", cut(s, width))
}

/// "1 alert", "3 alerts".
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl Style {
    fn paint(&self, sgr: &str, s: &str) -> String {
        if self.color && !sgr.is_empty() {
            format!("\x1b[{sgr}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    fn severity(&self, sev: &str, padded: &str) -> String {
        let sgr = match sev {
            "critical" => "1;31",
            "error" => "31",
            "warning" => "33",
            "info" => "36",
            _ => "",
        };
        self.paint(sgr, padded)
    }

    fn kind(&self, kind: &str, padded: &str) -> String {
        let sgr = match kind.rsplit('.').next().unwrap_or(kind) {
            "opened" | "reopened" | "created" => "1;31",
            "resolved" | "closed" => "32",
            "acknowledged" | "accepted" | "known_error" => "33",
            "merged" | "rejected" => "35",
            _ => "",
        };
        self.paint(sgr, padded)
    }

    fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }

    fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
}

/// The root cause as `service/alertname`, from `root_cause_alert` (the
/// fingerprint when only that is known), or None.
pub fn root_cause(incident: &Value) -> Option<String> {
    let rca = &incident["root_cause_alert"];
    if rca.is_object() {
        let service = rca["service"].as_str().unwrap_or("-");
        let name = rca["alertname"].as_str().unwrap_or("-");
        return Some(format!("{service}/{name}"));
    }
    incident["root_cause"].as_str().map(str::to_string)
}

fn table(rows: Vec<Vec<String>>, out: &mut dyn Write) -> io::Result<()> {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
                .min(60)
        })
        .collect();
    for r in rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| pad(c, *w)).collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    Ok(())
}

fn incident_rows(list: &[Value]) -> Vec<Vec<String>> {
    let mut rows = vec![[
        "ID",
        "STATUS",
        "PRIO",
        "SEVERITY",
        "ALERTS",
        "OPENED",
        "ROOT CAUSE",
        "TITLE",
    ]
    .map(String::from)
    .to_vec()];
    for i in list {
        rows.push(vec![
            cell(&i["id"]),
            cell(&i["status"]),
            cell(&i["priority"]),
            cell(&i["severity"]),
            i["alerts"].as_array().map_or(0, Vec::len).to_string(),
            cell(&i["opened_at"]),
            root_cause(i).unwrap_or_else(|| "-".into()),
            cell(&i["title"]),
        ]);
    }
    rows
}

fn problem_rows(list: &[Value]) -> Vec<Vec<String>> {
    let mut rows = vec![["ID", "STATE", "INCIDENTS", "LAST SEEN", "SIGNATURE"]
        .map(String::from)
        .to_vec()];
    for p in list {
        rows.push(vec![
            cell(&p["id"]),
            cell(&p["state"]),
            cell(&p["incident_count"]),
            cell(&p["last_seen"]),
            cell(&p["signature"]),
        ]);
    }
    rows
}

fn items<'v>(v: &'v Value, key: &str) -> &'v [Value] {
    v[key].as_array().map_or(&[], Vec::as_slice)
}

// ---- simple ----

/// Tables and one aligned line per event.
pub struct Simple<'a> {
    out: &'a mut dyn Write,
    style: Style,
}

/// Column widths of an event line.
const KIND_WIDTH: usize = 21;
const ID_WIDTH: usize = 20;
const SEVERITY_WIDTH: usize = 8;
const TITLE_WIDTH: usize = 48;

impl Simple<'_> {
    fn event_line(&self, ev: &Value) -> String {
        let st = self.style;
        let data = &ev["data"];
        let kind = ev["type"].as_str().unwrap_or("-");
        let kind = kind.strip_prefix("correlator.").unwrap_or(kind);
        let id = ev["subject"].as_str().unwrap_or("-");
        let is_problem = kind.starts_with("problem.");
        let (prio, sev, title, root, members) = if is_problem {
            let n = data["incident_count"]
                .as_u64()
                .or_else(|| data["incident_ids"].as_array().map(|a| a.len() as u64))
                .unwrap_or(0);
            (
                "-".to_string(),
                "-".to_string(),
                cell(&data["signature"]),
                cell(&data["state"]),
                plural(n, "incident", "incidents"),
            )
        } else {
            let n = data["alerts"].as_array().map_or(0, Vec::len) as u64;
            (
                cell(&data["priority"]),
                cell(&data["severity"]),
                cell(&data["title"]),
                root_cause(data).map_or_else(|| "-".into(), |r| format!("root {r}")),
                plural(n, "alert", "alerts"),
            )
        };
        format!(
            "{}  {}  {}  {:<2}  {}  {}  {}  {}",
            st.dim(&cell(&ev["time"])),
            st.kind(kind, &pad(kind, KIND_WIDTH)),
            pad(id, ID_WIDTH),
            prio,
            st.severity(&sev, &pad(&sev, SEVERITY_WIDTH)),
            st.bold(&pad(&title, TITLE_WIDTH)),
            root,
            members
        )
    }
}

impl Formatter for Simple<'_> {
    fn incident_list(&mut self, list: &Value) -> io::Result<()> {
        table(incident_rows(items(list, "incidents")), self.out)
    }
    fn incident(&mut self, incident: &Value) -> io::Result<()> {
        table(incident_rows(std::slice::from_ref(incident)), self.out)
    }
    fn problem_list(&mut self, list: &Value) -> io::Result<()> {
        table(problem_rows(items(list, "problems")), self.out)
    }
    fn problem(&mut self, problem: &Value) -> io::Result<()> {
        table(problem_rows(std::slice::from_ref(problem)), self.out)
    }
    fn event(&mut self, _raw: &[u8], event: &Value) -> io::Result<()> {
        let line = self.event_line(event);
        writeln!(self.out, "{}", line.trim_end())?;
        self.out.flush()
    }
}

// ---- extended ----

/// Detail views; events as in [`Simple`].
pub struct Extended<'a> {
    simple: Simple<'a>,
}

/// Labels shown beside each alert of an incident, when present.
const KEY_LABELS: [&str; 4] = ["service", "alertname", "severity", "instance"];

impl Extended<'_> {
    fn field(&mut self, name: &str, value: &str) -> io::Result<()> {
        writeln!(self.simple.out, "{:<13}{value}", format!("{name}:"))
    }

    fn write_incident(&mut self, i: &Value) -> io::Result<()> {
        let st = self.simple.style;
        let sev = cell(&i["severity"]);
        writeln!(
            self.simple.out,
            "{}  {}  {}  {}",
            st.bold(&format!("Incident {}", cell(&i["id"]))),
            cell(&i["status"]),
            cell(&i["priority"]),
            st.severity(&sev, &sev)
        )?;
        self.field("Title", &cell(&i["title"]))?;
        let group: Vec<String> = i["group"]
            .as_object()
            .map(|g| g.iter().map(|(k, v)| format!("{k}={}", cell(v))).collect())
            .unwrap_or_default();
        let group = if group.is_empty() {
            String::new()
        } else {
            format!(" ({})", group.join(", "))
        };
        self.field("Rule", &format!("{}{group}", cell(&i["rule"])))?;
        let root = match (root_cause(i), i["root_cause"].as_str()) {
            (Some(r), Some(fp)) if r != fp => format!("{r} ({fp})"),
            (Some(r), _) => r,
            (None, _) => "-".into(),
        };
        self.field("Root cause", &root)?;
        if let Some(into) = i["merged_into"].as_str() {
            self.field("Merged into", into)?;
        }
        if let Some(p) = i["problem_id"].as_str() {
            self.field("Problem", p)?;
        }
        let ke = &i["known_error"];
        if ke.is_object() {
            self.field("Known error", &cell(&ke["root_cause"]))?;
            self.field("Workaround", &cell(&ke["workaround"]))?;
            if let Some(link) = ke["link"].as_str() {
                self.field("Link", link)?;
            }
        }
        let mut notes = Vec::new();
        if let Some(n) = i["reopened"].as_u64().filter(|n| *n > 0) {
            notes.push(format!("reopened {}", plural(n, "time", "times")));
        }
        if i["flapping"].as_bool() == Some(true) {
            notes.push("flapping".into());
        }
        if !notes.is_empty() {
            self.field("Notes", &notes.join(", "))?;
        }
        writeln!(self.simple.out, "Timeline:")?;
        for (key, what) in [
            ("opened_at", "opened"),
            ("acknowledged_at", "acknowledged"),
            ("resolved_at", "resolved"),
            ("closed_at", "closed"),
        ] {
            if let Some(t) = i[key].as_str() {
                writeln!(self.simple.out, "  {t}  {what}")?;
            }
        }
        let alerts = items(i, "alerts");
        writeln!(self.simple.out, "Alerts ({}):", alerts.len())?;
        let mut rows = vec![[
            "FINGERPRINT",
            "STATUS",
            "SERVICE",
            "ALERTNAME",
            "SEVERITY",
            "INSTANCE",
            "FIRST SEEN",
            "LAST SEEN",
            "COUNT",
            "JOINED",
        ]
        .map(String::from)
        .to_vec()];
        for a in alerts {
            let mut row = vec![cell(&a["fingerprint"]), cell(&a["status"])];
            row.extend(KEY_LABELS.iter().map(|l| cell(&a["labels"][*l])));
            row.extend([
                cell(&a["first_seen"]),
                cell(&a["last_seen"]),
                cell(&a["occurrences"]),
                cell(&a["joined"]),
            ]);
            rows.push(row);
        }
        let mut buf = Vec::new();
        table(rows, &mut buf)?;
        for line in String::from_utf8_lossy(&buf).lines() {
            writeln!(self.simple.out, "  {line}")?;
        }
        Ok(())
    }

    fn write_problem(&mut self, p: &Value) -> io::Result<()> {
        let st = self.simple.style;
        writeln!(
            self.simple.out,
            "{}  {}",
            st.bold(&format!("Problem {}", cell(&p["id"]))),
            cell(&p["state"])
        )?;
        self.field("Signature", &cell(&p["signature"]))?;
        self.field("Template", &cell(&p["template"]))?;
        self.field("Service", &cell(&p["service"]))?;
        if let Some(into) = p["merged_into"].as_str() {
            self.field("Merged into", into)?;
        }
        let ke = &p["known_error"];
        if ke.is_object() {
            self.field("Known error", &cell(&ke["root_cause"]))?;
            self.field("Workaround", &cell(&ke["workaround"]))?;
            if let Some(link) = ke["link"].as_str() {
                self.field("Link", link)?;
            }
        }
        writeln!(self.simple.out, "Timeline:")?;
        writeln!(self.simple.out, "  {}  first seen", cell(&p["first_seen"]))?;
        writeln!(self.simple.out, "  {}  last seen", cell(&p["last_seen"]))?;
        let incidents = items(p, "incident_ids");
        let count = p["incident_count"]
            .as_u64()
            .unwrap_or(incidents.len() as u64);
        writeln!(self.simple.out, "Incidents ({count}):")?;
        for id in incidents {
            writeln!(self.simple.out, "  {}", cell(id))?;
        }
        Ok(())
    }
}

impl Formatter for Extended<'_> {
    fn incident_list(&mut self, list: &Value) -> io::Result<()> {
        for (n, i) in items(list, "incidents").iter().enumerate() {
            if n > 0 {
                writeln!(self.simple.out)?;
            }
            self.write_incident(i)?;
        }
        Ok(())
    }
    fn incident(&mut self, incident: &Value) -> io::Result<()> {
        self.write_incident(incident)
    }
    fn problem_list(&mut self, list: &Value) -> io::Result<()> {
        for (n, p) in items(list, "problems").iter().enumerate() {
            if n > 0 {
                writeln!(self.simple.out)?;
            }
            self.write_problem(p)?;
        }
        Ok(())
    }
    fn problem(&mut self, problem: &Value) -> io::Result<()> {
        self.write_problem(problem)
    }
    fn event(&mut self, raw: &[u8], event: &Value) -> io::Result<()> {
        self.simple.event(raw, event)
    }
}

// ---- json ----

/// API answers pretty-printed; events one per line, byte for byte as
/// published.
pub struct Json<'a> {
    out: &'a mut dyn Write,
}

impl Json<'_> {
    fn pretty(&mut self, v: &Value) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *self.out, v)?;
        writeln!(self.out)
    }
}

impl Formatter for Json<'_> {
    fn incident_list(&mut self, list: &Value) -> io::Result<()> {
        self.pretty(list)
    }
    fn incident(&mut self, incident: &Value) -> io::Result<()> {
        self.pretty(incident)
    }
    fn problem_list(&mut self, list: &Value) -> io::Result<()> {
        self.pretty(list)
    }
    fn problem(&mut self, problem: &Value) -> io::Result<()> {
        self.pretty(problem)
    }
    fn event(&mut self, raw: &[u8], _event: &Value) -> io::Result<()> {
        self.out.write_all(raw)?;
        writeln!(self.out)?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color_unless_forced() {
        for (choice, terminal, no_color, want) in [
            (ColorChoice::Auto, true, false, true),
            (ColorChoice::Auto, false, false, false),
            (ColorChoice::Auto, true, true, false),
            (ColorChoice::Always, false, true, true),
            (ColorChoice::Never, true, false, false),
        ] {
            assert_eq!(
                choice.resolve(terminal, no_color),
                want,
                "{choice:?} terminal={terminal} NO_COLOR={no_color}"
            );
        }
    }

    #[test]
    fn cells_are_cut_and_padded_and_plurals_agree() {
        assert_eq!(pad("abc", 5), "abc  ");
        assert_eq!(pad("abcdef", 4), "abc…");
        assert_eq!(plural(1, "alert", "alerts"), "1 alert");
        assert_eq!(plural(0, "alert", "alerts"), "0 alerts");
        let mut out = Vec::new();
        table(
            vec![
                vec!["A".into(), "BB".into()],
                vec!["xxx".into(), "y".into()],
            ],
            &mut out,
        )
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "A    BB\nxxx  y\n");
    }

    #[test]
    fn coloured_event_line_has_escapes_and_plain_one_has_none() {
        let ev = serde_json::json!({"type": "correlator.incident.opened", "subject": "inc-0000000000000001",
            "time": "2026-01-05T10:00:00Z", "data": {"priority": "P1", "severity": "critical",
            "title": "Down", "alerts": [{}]}});
        let mut plain = Vec::new();
        formatter(Format::Simple, Style { color: false }, &mut plain)
            .event(b"", &ev)
            .unwrap();
        assert!(!plain.contains(&0x1b));
        let mut coloured = Vec::new();
        formatter(Format::Simple, Style { color: true }, &mut coloured)
            .event(b"", &ev)
            .unwrap();
        assert!(coloured.contains(&0x1b));
    }
}
