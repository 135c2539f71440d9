//! The comparison as markdown: throughput with ratios, p99 latency, memory
//! per idle connection, CPU use, errors, and how it was measured.

use std::fmt::Write as _;

use crate::record::{human_count, human_us};
use crate::report::summary::group_thousands;
use crate::report::{Meta, Summary};

/// Renders the report; `chart_file` is the chart's path relative to the
/// markdown file.
#[must_use]
pub fn render_markdown(summary: &Summary, meta: &Meta, chart_file: &str) -> String {
    let mut out = String::new();
    let subject_name = summary
        .servers
        .first()
        .map_or_else(|| summary.subject.clone(), |s| s.name.clone());
    let rounds = meta.rounds.map_or(summary.rounds, |r| r as usize);
    let window = meta.duration.as_deref().unwrap_or("?");

    let _ = writeln!(
        out,
        "# Duplex and its peers: echo throughput, latency, memory\n"
    );
    let _ = writeln!(
        out,
        "![echo throughput and memory per idle connection]({chart_file})\n"
    );

    if !summary.workloads.is_empty() {
        let basis = if rounds == 1 {
            format!("One round of {window}")
        } else {
            format!("Median of {rounds} interleaved rounds of {window}")
        };
        let _ = writeln!(
            out,
            "## Closed-loop echo: messages per second\n\n\
             {basis}; higher is better. \
             In parentheses: {subject_name} ÷ that server (above 1× means {subject_name} is faster).\n"
        );
        header(&mut out, summary, "connections × payload");
        for workload in &summary.workloads {
            let mut row = format!("| {} |", workload.title());
            for server in &summary.servers {
                let cell = summary.echo.get(&(server.label.clone(), *workload));
                let text = match cell {
                    None => "–".to_owned(),
                    Some(cell) if server.label == summary.subject => {
                        format!("**{}**", human_count(cell.messages_per_sec))
                    }
                    Some(cell) => match summary.echo_ratio(&server.label, *workload) {
                        Some(ratio) => {
                            format!("{} ({ratio:.2}×)", human_count(cell.messages_per_sec))
                        }
                        None => human_count(cell.messages_per_sec),
                    },
                };
                let _ = write!(row, " {text} |");
            }
            let _ = writeln!(out, "{row}");
        }

        let _ = writeln!(
            out,
            "\n## Echo latency, 99th percentile\n\n\
             Median over the rounds of each run's p99 round trip; lower is better. \
             In closed loop, latency and throughput are two views of the same run.\n"
        );
        header(&mut out, summary, "connections × payload");
        for workload in &summary.workloads {
            let mut row = format!("| {} |", workload.title());
            for server in &summary.servers {
                let text = summary
                    .echo
                    .get(&(server.label.clone(), *workload))
                    .and_then(|cell| cell.p99_us)
                    .map_or_else(|| "–".to_owned(), human_us);
                let _ = write!(row, " {text} |");
            }
            let _ = writeln!(out, "{row}");
        }
    }

    if !summary.memory.is_empty() {
        let held = summary
            .memory
            .values()
            .map(|c| c.connections)
            .max()
            .unwrap_or(0);
        let wanted = meta.idle_connections.unwrap_or(held);
        let _ = writeln!(
            out,
            "\n## Server memory per idle connection\n\n\
             Growth of the server's resident memory (VmRSS) from before the first connection to \
             {} open idle connections, divided by their number; median of the rounds; lower is \
             better. In parentheses: {subject_name} ÷ that server.\n",
            group_thousands(wanted)
        );
        header(&mut out, summary, "");
        let mut row = "| RSS per connection |".to_owned();
        for server in &summary.servers {
            let text = match summary.memory.get(&server.label) {
                None => "–".to_owned(),
                Some(cell) if server.label == summary.subject => {
                    format!("**{:.1} KiB**", cell.per_connection_kib)
                }
                Some(cell) => match summary.memory_ratio(&server.label) {
                    Some(ratio) => format!("{:.1} KiB ({ratio:.2}×)", cell.per_connection_kib),
                    None => format!("{:.1} KiB", cell.per_connection_kib),
                },
            };
            let _ = write!(row, " {text} |");
        }
        let _ = writeln!(out, "{row}");
        let short: Vec<String> = summary
            .servers
            .iter()
            .filter_map(|s| {
                let cell = summary.memory.get(&s.label)?;
                (cell.connections < wanted)
                    .then(|| format!("{} held only {}", s.name, group_thousands(cell.connections)))
            })
            .collect();
        if !short.is_empty() {
            let _ = writeln!(out, "\nNot every connection opened: {}.", short.join("; "));
        }
    }

    if !summary.workloads.is_empty() {
        let _ = writeln!(
            out,
            "\n## CPU during the echo runs, and the generator's ceiling\n\n\
             Median server CPU in the window, percent of its one core. Then the load generator's \
             highest CPU, and its ceiling: messages per second divided by its share of its core, \
             the rate it could drive at that cost per message, from the runs against the row's \
             fastest server. A row where the generator is near 100% and the server is not measured the \
             generator, not the server.\n"
        );
        let mut head = "| connections × payload |".to_owned();
        let mut rule = "|---|".to_owned();
        for server in &summary.servers {
            let _ = write!(head, " {} |", server.name);
            rule.push_str("---:|");
        }
        let _ = writeln!(
            out,
            "{head} generator CPU (max) | generator ceiling |\n{rule}---:|---:|"
        );
        for workload in &summary.workloads {
            let mut row = format!("| {} |", workload.title());
            let mut generator: Option<f64> = None;
            // (fastest server's rate, the generator's ceiling in its runs)
            let mut ceiling: Option<(f64, f64)> = None;
            for server in &summary.servers {
                let cell = summary.echo.get(&(server.label.clone(), *workload));
                let text = cell
                    .and_then(|c| c.server_cpu)
                    .map_or_else(|| "–".to_owned(), |p| format!("{p:.0}%"));
                if let Some(g) = cell.and_then(|c| c.generator_cpu_max) {
                    generator = Some(generator.map_or(g, |m| m.max(g)));
                }
                if let Some((rate, c)) =
                    cell.and_then(|c| Some((c.messages_per_sec, c.generator_ceiling?)))
                    && ceiling.is_none_or(|(fastest, _)| rate > fastest)
                {
                    ceiling = Some((rate, c));
                }
                let _ = write!(row, " {text} |");
            }
            let g = generator.map_or_else(|| "–".to_owned(), |g| format!("{g:.0}%"));
            let c = ceiling.map_or_else(
                || "–".to_owned(),
                |(_, c)| format!("{} msg/s", human_count(c)),
            );
            let _ = writeln!(out, "{row} {g} | {c} |");
        }
    }

    let mut errors: Vec<String> = Vec::new();
    for server in &summary.servers {
        let echo: u64 = summary
            .echo
            .iter()
            .filter(|((label, _), _)| *label == server.label)
            .map(|(_, c)| c.errors)
            .sum();
        let hold = summary.memory.get(&server.label).map_or(0, |c| c.errors);
        if echo + hold > 0 {
            errors.push(format!(
                "{}: {echo} in echo runs, {hold} in hold runs",
                server.name
            ));
        }
    }
    let _ = writeln!(out, "\n## Errors\n");
    if errors.is_empty() {
        let _ = writeln!(
            out,
            "None: every echo of every run came back byte for byte, and every connection stayed open."
        );
    } else {
        let _ = writeln!(
            out,
            "Connections ended by an error (see results.json for kinds and messages):\n"
        );
        for line in errors {
            let _ = writeln!(out, "- {line}");
        }
    }

    let _ = writeln!(out, "\n## How this was measured\n");
    let facts = [
        ("Command", meta.command.as_ref().map(|c| format!("`{c}`"))),
        ("Date", meta.date.clone()),
        ("Machine", meta.machine.clone()),
        ("Load average at start", meta.load.clone()),
        ("Pinning", meta.pinning.clone()),
        (
            "Rounds",
            meta.rounds.map(|r| {
                format!(
                    "{r}, interleaved (every server once per configuration, then the next round); \
                     {window} windows after {} warm-up",
                    meta.warmup.as_deref().unwrap_or("no")
                )
            }),
        ),
    ];
    for (name, value) in facts {
        if let Some(value) = value {
            let _ = writeln!(out, "- {name}: {value}");
        }
    }
    let versions: Vec<String> = summary
        .servers
        .iter()
        .map(|s| s.title())
        .chain(meta.versions.iter().map(|(k, v)| format!("{k} {v}")))
        .collect();
    let _ = writeln!(out, "- Versions: {}", versions.join(", "));
    out
}

fn header(out: &mut String, summary: &Summary, first: &str) {
    let mut head = format!("| {first} |");
    let mut rule = "|---|".to_owned();
    for server in &summary.servers {
        let _ = write!(head, " {} |", server.title());
        rule.push_str("---:|");
    }
    let _ = writeln!(out, "{head}\n{rule}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::summarize;
    use crate::report::summary::tests::three_rounds;

    #[test]
    fn table_shows_medians_ratios_and_memory() {
        let meta = Meta {
            rounds: Some(3),
            duration: Some("5s".into()),
            command: Some("scripts/bench.sh".into()),
            ..Meta::default()
        };
        let summary = summarize(&three_rounds(), &meta, Some("duplex"));
        let text = render_markdown(&summary, &meta, "chart.svg");
        assert!(text.contains("![echo throughput"), "{text}");
        assert!(
            text.contains("| 100 × 20 B | **100.0k** | 50.0k (2.00×) |"),
            "{text}"
        );
        assert!(
            text.contains("| 10 × 16 KiB | **50.0k** | 25.0k (2.00×) |"),
            "{text}"
        );
        assert!(
            text.contains("| RSS per connection | **10.0 KiB** | 40.0 KiB (0.25×) |"),
            "{text}"
        );
        assert!(
            text.contains("| 100 × 20 B | 10.00 µs | 20.00 µs |")
                || text.contains("| 100 × 20 B | 10 µs | 20 µs |"),
            "{text}"
        );
        assert!(
            text.contains("| 100 × 20 B | 99% | 99% | 60% | 166.7k msg/s |"),
            "{text}"
        );
        assert!(text.contains("None: every echo"), "{text}");
        assert!(text.contains("- Command: `scripts/bench.sh`"), "{text}");
    }

    #[test]
    fn errors_are_listed_per_server() {
        let mut records = three_rounds();
        records[1]
            .errors
            .insert(crate::error::ErrorKind::Mismatch, 2);
        let summary = summarize(&records, &Meta::default(), Some("duplex"));
        let text = render_markdown(&summary, &Meta::default(), "chart.svg");
        assert!(
            text.contains("- peer: 2 in echo runs, 0 in hold runs"),
            "{text}"
        );
    }
}
