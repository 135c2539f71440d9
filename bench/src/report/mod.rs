//! `duplex-bench report`: reads the results of a comparison run (one JSON
//! file per run, plus the script's `meta.json`) and writes the markdown
//! table, the SVG chart and all results in one JSON file.

mod chart;
mod markdown;
mod summary;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};

pub use chart::draw_chart;
pub use markdown::render_markdown;
pub use summary::{
    EchoCell, MemoryCell, Summary, Workload, group_thousands, human_bytes, summarize,
};

use crate::error::ReportError;
use crate::record::RunRecord;

/// Options of `duplex-bench report`.
#[derive(Debug, Clone, Args)]
pub struct ReportOptions {
    /// Directory of results: one `--json` result per file (*.json), and
    /// optionally meta.json describing the run (servers, machine, command).
    pub results: PathBuf,

    /// Directory to write results.md, chart.svg and results.json into.
    #[arg(long, default_value = "docs/bench")]
    pub out: PathBuf,

    /// Label the ratios are computed for. Default: meta.json's subject, or
    /// the first label found.
    #[arg(long)]
    pub subject: Option<String>,
}

/// A server compared: its label in the results and how to show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// The `--label` its runs carry.
    pub label: String,
    /// Display name, e.g. "fastwebsockets".
    pub name: String,
    /// Version shown beside the name.
    #[serde(default)]
    pub version: Option<String>,
}

impl ServerInfo {
    /// "name version".
    #[must_use]
    pub fn title(&self) -> String {
        match &self.version {
            Some(version) => format!("{} {version}", self.name),
            None => self.name.clone(),
        }
    }
}

/// How the comparison was run, written by `scripts/bench.sh`. Every field
/// is optional so a hand-made results directory renders too.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Meta {
    /// The exact command that produced the results.
    pub command: Option<String>,
    /// When it ran (UTC).
    pub date: Option<String>,
    /// CPU model, cores, memory, kernel.
    pub machine: Option<String>,
    /// Which cores the server and the generator were pinned to.
    pub pinning: Option<String>,
    /// Rounds of every configuration.
    pub rounds: Option<u32>,
    /// Length of each measurement window.
    pub duration: Option<String>,
    /// Warm-up before each window.
    pub warmup: Option<String>,
    /// Idle connections of the memory runs.
    pub idle_connections: Option<usize>,
    /// Load average when the run started: a busy machine makes noise.
    pub load: Option<String>,
    /// The label ratios are computed for.
    pub subject: Option<String>,
    /// The servers, in column order.
    pub servers: Vec<ServerInfo>,
    /// Versions of the tools involved (rustc, node, the generator).
    pub versions: BTreeMap<String, String>,
}

/// Reads every result in `dir` (all `*.json` but `meta.json`), sorted by
/// file name.
///
/// # Errors
/// A file that cannot be read or parsed, or no results at all.
pub fn read_results(dir: &Path) -> Result<Vec<RunRecord>, ReportError> {
    let read_error = |source| ReportError::Read {
        path: dir.to_owned(),
        source,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_error)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.extension().is_some_and(|ext| ext == "json")
                && path.file_name().is_some_and(|name| name != "meta.json")
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(ReportError::NoResults(dir.to_owned()));
    }
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
                path: path.clone(),
                source,
            })?;
            serde_json::from_str(&text).map_err(|source| ReportError::Parse {
                path: path.clone(),
                source,
            })
        })
        .collect()
}

/// Reads `dir/meta.json`, or the empty description when there is none.
///
/// # Errors
/// The file exists but cannot be read or parsed.
pub fn read_meta(dir: &Path) -> Result<Meta, ReportError> {
    let path = dir.join("meta.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            serde_json::from_str(&text).map_err(|source| ReportError::Parse { path, source })
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Meta::default()),
        Err(source) => Err(ReportError::Read { path, source }),
    }
}

/// Renders the report of `options.results` into `options.out` and returns
/// the markdown.
///
/// # Errors
/// Unreadable results, or outputs that cannot be written.
pub fn run(options: &ReportOptions) -> Result<String, ReportError> {
    let records = read_results(&options.results)?;
    let meta = read_meta(&options.results)?;
    let summary = summarize(&records, &meta, options.subject.as_deref());
    let markdown = render_markdown(&summary, &meta, "chart.svg");
    let out = &options.out;
    let write_error = |path: PathBuf| move |source| ReportError::Write { path, source };
    std::fs::create_dir_all(out).map_err(write_error(out.clone()))?;
    let md_path = out.join("results.md");
    std::fs::write(&md_path, &markdown).map_err(write_error(md_path.clone()))?;
    let all = serde_json::json!({ "meta": meta, "runs": records });
    let json_path = out.join("results.json");
    let json = serde_json::to_string_pretty(&all).unwrap_or_default();
    std::fs::write(&json_path, json + "\n").map_err(write_error(json_path.clone()))?;
    draw_chart(&summary, &meta, &out.join("chart.svg"))?;
    Ok(markdown)
}
