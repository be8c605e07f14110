//! A real SMTP server for email tests: `smtp_sink.py` (Python's `aiosmtpd`, installed into the
//! tests' venv by the Makefile) records every message it accepts as a JSON file; [`SmtpSink`]
//! starts it, reads what arrived and parses each message with `mail-parser`.

use mail_parser::MessageParser;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Mail {
    pub rcpt_tos: Vec<String>,
    pub subject: String,
    pub message_id: String,
    pub in_reply_to: String,
    pub references: String,
    pub text: String,
    pub html: String,
    pub raw: String,
}

pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

/// The venv's Python: `CONFAB_TEST_PYTHON`, else tests/clients/python/.venv (made by `make test`).
fn python() -> PathBuf {
    match std::env::var("CONFAB_TEST_PYTHON") {
        Ok(path) if !path.is_empty() => PathBuf::from(path),
        _ => super::repo_root().join("tests/clients/python/.venv/bin/python"),
    }
}

fn header_text(message: &mail_parser::Message, name: &str) -> String {
    message
        .header_raw(name)
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let port = super::free_port();
        let dir = tempfile::tempdir().expect("sink dir");
        let script = super::repo_root().join("tests/common/smtp_sink.py");
        let python = python();
        let mut child = Command::new(&python)
            .arg(script)
            .arg(port.to_string())
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting the SMTP sink with {python:?} (run `make test-venv`): {e}")
            });
        let stdout = child.stdout.take().expect("sink stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("sink output");
        assert_eq!(line.trim(), "ready", "the SMTP sink did not start");
        SmtpSink { port, dir, child }
    }

    /// Every message received so far, in arrival order.
    pub fn mails(&self) -> Vec<Mail> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("sink dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|path| {
                let record: Value =
                    serde_json::from_slice(&std::fs::read(path).expect("mail file")).expect("json");
                let raw = record["data"].as_str().expect("data").to_string();
                let parsed = MessageParser::default()
                    .parse(raw.as_bytes())
                    .expect("a parsable message");
                Mail {
                    rcpt_tos: record["rcpt_tos"]
                        .as_array()
                        .expect("rcpt_tos")
                        .iter()
                        .map(|r| r.as_str().expect("rcpt").to_string())
                        .collect(),
                    subject: parsed.subject().unwrap_or_default().to_string(),
                    message_id: header_text(&parsed, "Message-ID"),
                    in_reply_to: header_text(&parsed, "In-Reply-To"),
                    references: header_text(&parsed, "References"),
                    text: parsed
                        .body_text(0)
                        .map(|t| t.into_owned())
                        .unwrap_or_default(),
                    html: parsed
                        .body_html(0)
                        .map(|t| t.into_owned())
                        .unwrap_or_default(),
                    raw,
                }
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
