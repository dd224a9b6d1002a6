//! `correlator incidents …`: list, show, acknowledge or resolve incidents
//! through the daemon's HTTP API. `list` prints a table, `show` a detail
//! view (alerts, timeline, root cause, known error); `--json` the API's JSON.

use clap::Subcommand;

use crate::cmd::client::{call, query, ApiArgs};
use crate::cmd::format::Format;

#[derive(Subcommand, Debug)]
pub enum IncidentsCmd {
    /// List incidents, newest first.
    List {
        /// Only this status (open, acknowledged, resolved, closed, merged).
        #[arg(long)]
        status: Option<String>,
        /// Only incidents with an alert of this service.
        #[arg(long)]
        service: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One incident in detail: alerts with key labels, timeline, root cause.
    Show { id: String },
    /// Acknowledge an incident (needs the API token).
    #[command(alias = "acknowledge")]
    Ack { id: String },
    /// Resolve an incident by hand (needs the API token).
    Resolve { id: String },
}

pub fn run(a: &ApiArgs, cmd: IncidentsCmd) -> anyhow::Result<()> {
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
            a.print(Format::Simple, |f| f.incident_list(&v))
        }
        IncidentsCmd::Show { id } => {
            let v = call(a, "GET", &format!("/api/v1/incidents/{id}"), None)?;
            a.print(Format::Extended, |f| f.incident(&v))
        }
        IncidentsCmd::Ack { id } => {
            let path = format!("/api/v1/incidents/{id}/acknowledge");
            let v = call(a, "POST", &path, None)?;
            a.print(Format::Simple, |f| f.incident(&v))
        }
        IncidentsCmd::Resolve { id } => {
            let v = call(a, "POST", &format!("/api/v1/incidents/{id}/resolve"), None)?;
            a.print(Format::Simple, |f| f.incident(&v))
        }
    }
}
