//! The nginx column of issue 12's corpus: sends every case of the raw-socket corpus
//! (`tests/it/hardening_corpus.rs`, the list the integration test asserts on) to each server
//! named on the command line and prints the statuses side by side as a Markdown table.
//!
//! ```text
//! cargo run --example framing_corpus -- portico=8080,8082 nginx=8090 haproxy=8100
//! ```
//!
//! `NAME=PORT[,RAW_PORT]`: `RAW_PORT` takes the cases meant for a listener without path
//! normalization (Portico's `path_normalization: off`); without it they go to `PORT`. A status
//! of `-` means the server closed the connection without answering. `benches/framing_corpus.sh`
//! starts the servers with equivalent configs and runs this.

#[path = "../tests/it/hardening_corpus.rs"]
mod corpus;

/// One server to ask.
struct Target {
    name: String,
    port: u16,
    raw_port: u16,
}

fn parse(arg: &str) -> Option<Target> {
    let (name, ports) = arg.split_once('=')?;
    let (port, raw) = ports.split_once(',').unwrap_or((ports, ports));
    Some(Target { name: name.to_string(), port: port.parse().ok()?, raw_port: raw.parse().ok()? })
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let targets: Vec<Target> = std::env::args().skip(1).filter_map(|a| parse(&a)).collect();
    if targets.is_empty() {
        eprintln!("usage: framing_corpus NAME=PORT[,RAW_PORT]...");
        std::process::exit(2);
    }
    let cases = corpus::corpus();
    let mut head = String::from("| case | Portico must |");
    let mut rule = String::from("|---|---|");
    for t in &targets {
        head.push_str(&format!(" {} |", t.name));
        rule.push_str("---|");
    }
    println!("{head}\n{rule}");
    let mut refused = vec![0usize; targets.len()];
    let mut must_refuse = 0;
    for c in &cases {
        let mut row = format!("| {} | {} |", c.name.replace('|', "\\|"), c.status);
        must_refuse += usize::from(c.status >= 400);
        for (i, t) in targets.iter().enumerate() {
            let port = if c.listener == "raw" { t.raw_port } else { t.port };
            let (status, _) = corpus::raw(port, &c.request).await;
            // A refusal: a 4xx/5xx, or a connection closed without an answer.
            refused[i] += usize::from(status == 0 || status >= 400);
            row.push_str(&if status == 0 { " - |".to_string() } else { format!(" {status} |") });
        }
        println!("{row}");
    }
    let mut total = format!("| refused (4xx, 5xx or closed), of {} cases | {must_refuse} |", cases.len());
    for n in refused {
        total.push_str(&format!(" {n} |"));
    }
    println!("{total}");
}
