//! `correlator incidents …` and `correlator problems …`: the HTTP API from a
//! terminal, as tables (or `--json`).
//!
//! The client is a few lines of HTTP/1.1 over `TcpStream`: the API is local
//! (127.0.0.1 by default) and plain, so no TLS client is pulled in.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::Value;

#[derive(Args, Debug, Clone)]
pub struct ApiArgs {
    /// Base URL of the daemon's HTTP API.
    #[arg(long, default_value = "http://127.0.0.1:9464", global = true)]
    pub url: String,
    /// Environment variable holding the bearer token (for changes).
    #[arg(long, default_value = "CORRELATOR_API_TOKEN", global = true)]
    pub token_env: String,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum IncidentsCmd {
    /// List incidents, newest first.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        service: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    Show {
        id: String,
    },
    #[command(alias = "acknowledge")]
    Ack {
        id: String,
    },
    Resolve {
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ProblemsCmd {
    List {
        #[arg(long)]
        state: Option<String>,
    },
    Show {
        id: String,
    },
    Accept {
        id: String,
    },
    Reject {
        id: String,
    },
    Resolve {
        id: String,
    },
    /// Record the known error (root cause and workaround) of a problem.
    KnownError {
        id: String,
        #[arg(long)]
        root_cause: String,
        #[arg(long)]
        workaround: String,
        #[arg(long)]
        link: Option<String>,
    },
    /// Merge problem FROM into problem INTO.
    Merge {
        into: String,
        from: String,
    },
}

/// A blocking HTTP/1.1 request; returns (status, body).
fn request(
    url: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let rest = url
        .strip_prefix("http://")
        .context("--url must start with http://")?;
    let host = rest.trim_end_matches('/');
    let mut s = TcpStream::connect(host).with_context(|| format!("connecting to {host}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = body.unwrap_or("");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, payload) = text
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("malformed status line")?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let payload = if chunked {
        dechunk(payload)
    } else {
        payload.to_string()
    };
    Ok((status, payload))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn call(a: &ApiArgs, method: &str, path: &str, body: Option<&str>) -> anyhow::Result<Value> {
    let token = if method == "POST" {
        std::env::var(&a.token_env).ok()
    } else {
        None
    };
    let (status, text) = request(&a.url, method, path, token.as_deref(), body)?;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
    if status >= 400 {
        let msg = v.get("error").and_then(Value::as_str).unwrap_or(&text);
        bail!("{method} {path}: {status}: {msg}");
    }
    Ok(v)
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(x) => x.clone(),
        other => other.to_string(),
    }
}

fn table(rows: Vec<Vec<String>>, out: &mut impl Write) -> std::io::Result<()> {
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
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| {
                let c: String = cell.chars().take(*w).collect();
                format!("{c:<w$}")
            })
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    Ok(())
}

fn incident_rows(list: &[Value]) -> Vec<Vec<String>> {
    let mut rows = vec![[
        "ID", "STATUS", "PRIO", "SEVERITY", "ALERTS", "OPENED", "TITLE",
    ]
    .map(String::from)
    .to_vec()];
    for i in list {
        rows.push(vec![
            s(&i["id"]),
            s(&i["status"]),
            s(&i["priority"]),
            s(&i["severity"]),
            i["alerts"].as_array().map_or(0, Vec::len).to_string(),
            s(&i["opened_at"]),
            s(&i["title"]),
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
            s(&p["id"]),
            s(&p["state"]),
            s(&p["incident_count"]),
            s(&p["last_seen"]),
            s(&p["signature"]),
        ]);
    }
    rows
}

fn print(
    a: &ApiArgs,
    v: &Value,
    rows: impl FnOnce(&Value) -> Vec<Vec<String>>,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(v)?)?;
    } else {
        table(rows(v), &mut out)?;
    }
    Ok(())
}

fn query(pairs: &[(&str, Option<String>)]) -> String {
    let q: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| {
            v.as_ref().map(|v| {
                format!(
                    "{k}={}",
                    v.replace(
                        |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_',
                        ""
                    )
                )
            })
        })
        .collect();
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

pub fn incidents(a: &ApiArgs, cmd: IncidentsCmd) -> anyhow::Result<()> {
    match cmd {
        IncidentsCmd::List {
            status,
            service,
            limit,
        } => {
            let q = query(&[
                ("status", status),
                ("service", service),
                ("limit", Some(limit.to_string())),
            ]);
            let v = call(a, "GET", &format!("/api/v1/incidents{q}"), None)?;
            print(a, &v, |v| {
                incident_rows(v["incidents"].as_array().map_or(&[], |x| x.as_slice()))
            })
        }
        IncidentsCmd::Show { id } => {
            let v = call(a, "GET", &format!("/api/v1/incidents/{id}"), None)?;
            print(a, &v, |v| incident_rows(std::slice::from_ref(v)))
        }
        IncidentsCmd::Ack { id } => {
            let v = call(
                a,
                "POST",
                &format!("/api/v1/incidents/{id}/acknowledge"),
                None,
            )?;
            print(a, &v, |v| incident_rows(std::slice::from_ref(v)))
        }
        IncidentsCmd::Resolve { id } => {
            let v = call(a, "POST", &format!("/api/v1/incidents/{id}/resolve"), None)?;
            print(a, &v, |v| incident_rows(std::slice::from_ref(v)))
        }
    }
}

pub fn problems(a: &ApiArgs, cmd: ProblemsCmd) -> anyhow::Result<()> {
    let one = |v: &Value| problem_rows(std::slice::from_ref(v));
    match cmd {
        ProblemsCmd::List { state } => {
            let v = call(
                a,
                "GET",
                &format!("/api/v1/problems{}", query(&[("state", state)])),
                None,
            )?;
            print(a, &v, |v| {
                problem_rows(v["problems"].as_array().map_or(&[], |x| x.as_slice()))
            })
        }
        ProblemsCmd::Show { id } => print(
            a,
            &call(a, "GET", &format!("/api/v1/problems/{id}"), None)?,
            one,
        ),
        ProblemsCmd::Accept { id } => print(
            a,
            &call(a, "POST", &format!("/api/v1/problems/{id}/accept"), None)?,
            one,
        ),
        ProblemsCmd::Reject { id } => print(
            a,
            &call(a, "POST", &format!("/api/v1/problems/{id}/reject"), None)?,
            one,
        ),
        ProblemsCmd::Resolve { id } => print(
            a,
            &call(a, "POST", &format!("/api/v1/problems/{id}/resolve"), None)?,
            one,
        ),
        ProblemsCmd::KnownError {
            id,
            root_cause,
            workaround,
            link,
        } => {
            let body = serde_json::json!({"root_cause": root_cause, "workaround": workaround, "link": link}).to_string();
            print(
                a,
                &call(
                    a,
                    "POST",
                    &format!("/api/v1/problems/{id}/known-error"),
                    Some(&body),
                )?,
                one,
            )
        }
        ProblemsCmd::Merge { into, from } => {
            let body = serde_json::json!({"from": from}).to_string();
            print(
                a,
                &call(
                    a,
                    "POST",
                    &format!("/api/v1/problems/{into}/merge"),
                    Some(&body),
                )?,
                one,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunks_and_tabulates() {
        assert_eq!(
            dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            "hello world"
        );
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
        assert_eq!(
            query(&[("status", Some("open".into())), ("service", None)]),
            "?status=open"
        );
    }
}
