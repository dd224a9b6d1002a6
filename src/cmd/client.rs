//! The small HTTP client `correlator incidents …` and `correlator problems
//! …` share, and their common flags.
//!
//! The client is a few lines of HTTP/1.1 over `TcpStream`: the API is local
//! (127.0.0.1 by default) and plain, so no TLS client is pulled in.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::Value;

use crate::cmd::format::{ColorChoice, Format, Formatter, Style};

#[derive(Args, Debug, Clone)]
pub struct ApiArgs {
    /// Base URL of the daemon's HTTP API.
    #[arg(long, default_value = "http://127.0.0.1:9464", global = true)]
    pub url: String,
    /// Environment variable holding the bearer token (for changes).
    #[arg(long, default_value = "CORRELATOR_API_TOKEN", global = true)]
    pub token_env: String,
    /// Print the API's JSON (the same as `--output json`).
    #[arg(long, global = true)]
    pub json: bool,
    /// Output format [default: extended for `show`, simple otherwise].
    #[arg(long, short = 'o', global = true, value_enum)]
    pub output: Option<Format>,
    /// Colour human output: auto (a terminal without NO_COLOR), always, never.
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub color: ColorChoice,
}

impl ApiArgs {
    /// The format asked for, else `default`.
    pub fn format(&self, default: Format) -> Format {
        if self.json {
            Format::Json
        } else {
            self.output.unwrap_or(default)
        }
    }

    /// Prints with the formatter for the asked format (else `default`).
    pub fn print(
        &self,
        default: Format,
        f: impl FnOnce(&mut dyn Formatter) -> std::io::Result<()>,
    ) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        let style = Style {
            color: self.color.enabled(),
        };
        let mut fmt = crate::cmd::format::formatter(self.format(default), style, &mut out);
        f(fmt.as_mut())?;
        Ok(())
    }
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

/// Calls the API; an answer of 400 or more is an error naming the call.
pub fn call(a: &ApiArgs, method: &str, path: &str, body: Option<&str>) -> anyhow::Result<Value> {
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

/// `?k=v&…` of the pairs that have a value (values reduced to `[A-Za-z0-9_-]`).
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunks_and_builds_queries() {
        assert_eq!(
            dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            "hello world"
        );
        assert_eq!(
            query(&[("status", Some("open".into())), ("service", None)]),
            "?status=open"
        );
    }
}
