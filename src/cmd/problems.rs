//! `correlator problems …`: review problem candidates and record known
//! errors through the daemon's HTTP API. `list` prints a table, `show` a
//! detail view (signature, template, incidents, known error); `--json` the
//! API's JSON.

use clap::Subcommand;

use crate::cmd::client::{call, query, ApiArgs};
use crate::cmd::format::Format;

#[derive(Subcommand, Debug)]
pub enum ProblemsCmd {
    /// List problems.
    List {
        /// Only this state (candidate, accepted, known_error, resolved,
        /// rejected, merged).
        #[arg(long)]
        state: Option<String>,
    },
    /// One problem in detail.
    Show {
        id: String,
    },
    /// Accept a candidate as a problem.
    Accept {
        id: String,
    },
    /// Reject a candidate (no new candidate for its signature for a while).
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

pub fn run(a: &ApiArgs, cmd: ProblemsCmd) -> anyhow::Result<()> {
    let post = |path: String, body: Option<String>| -> anyhow::Result<()> {
        let v = call(a, "POST", &path, body.as_deref())?;
        a.print(Format::Simple, |f| f.problem(&v))
    };
    match cmd {
        ProblemsCmd::List { state } => {
            let path = format!("/api/v1/problems{}", query(&[("state", state)]));
            let v = call(a, "GET", &path, None)?;
            a.print(Format::Simple, |f| f.problem_list(&v))
        }
        ProblemsCmd::Show { id } => {
            let mut v = call(a, "GET", &format!("/api/v1/problems/{id}"), None)?;
            // The problem carries its count; its incident ids are paged
            // (the first 1,000 shown, as `incident_ids`).
            if v.get("incident_ids").is_none() {
                let page = format!("/api/v1/problems/{id}/incidents?limit=1000");
                if let Ok(p) = call(a, "GET", &page, None) {
                    v["incident_ids"] = p["incident_ids"].clone();
                }
            }
            a.print(Format::Extended, |f| f.problem(&v))
        }
        ProblemsCmd::Accept { id } => post(format!("/api/v1/problems/{id}/accept"), None),
        ProblemsCmd::Reject { id } => post(format!("/api/v1/problems/{id}/reject"), None),
        ProblemsCmd::Resolve { id } => post(format!("/api/v1/problems/{id}/resolve"), None),
        ProblemsCmd::KnownError {
            id,
            root_cause,
            workaround,
            link,
        } => {
            let body = serde_json::json!({
                "root_cause": root_cause, "workaround": workaround, "link": link
            });
            post(
                format!("/api/v1/problems/{id}/known-error"),
                Some(body.to_string()),
            )
        }
        ProblemsCmd::Merge { into, from } => {
            let body = serde_json::json!({ "from": from });
            post(
                format!("/api/v1/problems/{into}/merge"),
                Some(body.to_string()),
            )
        }
    }
}
