//! A small, real SMTP server for tests: a TCP listener on 127.0.0.1 speaking enough of
//! RFC 5321 for lettre (greeting, EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET,
//! NOOP, QUIT), with no TLS and no AUTH, so `smtp://127.0.0.1:<port>` reaches it in plain.
//!
//! Each recipient address can be told how to answer `RCPT TO` ([`Behaviour`]); every
//! message accepted is recorded, envelope and raw data, for assertions.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};

/// How the server answers `RCPT TO` for one address.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// 250: accepted.
    Accept,
    /// 451 (a temporary failure) for the next `n` attempts, then accepted.
    TemporaryFirst(u32),
    /// 550 5.1.1: the mailbox does not exist.
    Permanent,
    /// This reply, as written (`554 5.7.1 Relaying denied`).
    Reply(&'static str),
}

/// One message the server accepted.
#[derive(Clone, Debug)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as it came after `DATA`, dot-unstuffed, without the final `.` line.
    pub data: String,
}

impl Received {
    /// The value of the first header called `name` (unfolded), if any.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(value) = found.as_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                continue;
            }
            if found.is_some() {
                break;
            }
            if let Some((n, value)) = line.split_once(':') {
                if n.eq_ignore_ascii_case(name) {
                    found = Some(value.trim().to_string());
                }
            }
        }
        found
    }
}

#[derive(Default)]
struct State {
    behaviours: HashMap<String, Behaviour>,
    received: Vec<Received>,
    /// Every `RCPT TO` seen, accepted or not, by address.
    attempts: HashMap<String, u32>,
}

pub struct SmtpServer {
    address: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the test SMTP server");
        let address = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    // A session that stalls or breaks just ends; the client sees it as a
                    // network failure, which is what such a server would cause.
                    let _ = tokio::time::timeout(Duration::from_secs(60), session(stream, state)).await;
                });
            }
        });
        SmtpServer { address, state, task }
    }

    /// `smtp://127.0.0.1:<port>`: plain SMTP, what lettre speaks without a `tls` parameter.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.address)
    }

    /// Sets how `RCPT TO:<address>` is answered from now on (addresses compare in lower case).
    pub fn set(&self, address: &str, behaviour: Behaviour) {
        self.state.lock().unwrap().behaviours.insert(address.to_ascii_lowercase(), behaviour);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// The messages accepted with this `Message-ID` (`<…@…>`).
    pub fn with_message_id(&self, message_id: &str) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.header("message-id").as_deref() == Some(message_id)).collect()
    }

    /// How many times a client asked for `address` in `RCPT TO`, whatever the answer.
    pub fn attempts(&self, address: &str) -> u32 {
        self.state.lock().unwrap().attempts.get(&address.to_ascii_lowercase()).copied().unwrap_or(0)
    }

    /// Waits (up to 20 seconds) until the message with this `Message-ID` has arrived.
    pub async fn wait_for(&self, message_id: &str) -> Received {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(received) = self.with_message_id(message_id).into_iter().next() {
                return received;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("{message_id} did not arrive within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The address inside `MAIL FROM:<…>` or `RCPT TO:<…>` (parameters after it ignored).
fn path_of(argument: &str) -> String {
    let argument = argument.trim();
    match (argument.find('<'), argument.find('>')) {
        (Some(start), Some(end)) if start < end => argument[start + 1..end].to_string(),
        _ => argument.split_whitespace().next().unwrap_or_default().to_string(),
    }
}

async fn session(stream: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 kettle-test ESMTP ready\r\n").await?;
    let mut mail_from: Option<String> = None;
    let mut rcpt_to: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end_matches(['\r', '\n']);
        let verb = command.split([' ', ':']).next().unwrap_or_default();
        let reply: String = match verb.to_ascii_uppercase().as_str() {
            // No STARTTLS and no AUTH offered: the client talks plain SMTP.
            "EHLO" => "250-kettle-test greets you\r\n250 8BITMIME".into(),
            "HELO" => "250 kettle-test".into(),
            "MAIL" => {
                let argument = command[4..].trim_start();
                let Some(rest) = argument.get(..5).filter(|p| p.eq_ignore_ascii_case("FROM:")).map(|_| &argument[5..])
                else {
                    write.write_all(b"501 5.5.4 Syntax: MAIL FROM:<address>\r\n").await?;
                    continue;
                };
                mail_from = Some(path_of(rest));
                rcpt_to.clear();
                "250 2.1.0 OK".into()
            }
            "RCPT" => {
                let argument = command[4..].trim_start();
                let Some(rest) = argument.get(..3).filter(|p| p.eq_ignore_ascii_case("TO:")).map(|_| &argument[3..])
                else {
                    write.write_all(b"501 5.5.4 Syntax: RCPT TO:<address>\r\n").await?;
                    continue;
                };
                if mail_from.is_none() {
                    write.write_all(b"503 5.5.1 MAIL first\r\n").await?;
                    continue;
                }
                let address = path_of(rest);
                let key = address.to_ascii_lowercase();
                let mut state = state.lock().unwrap();
                *state.attempts.entry(key.clone()).or_default() += 1;
                let behaviour = state.behaviours.get(&key).cloned().unwrap_or(Behaviour::Accept);
                match behaviour {
                    Behaviour::Accept => {
                        rcpt_to.push(address);
                        "250 2.1.5 OK".into()
                    }
                    Behaviour::TemporaryFirst(0) => {
                        rcpt_to.push(address);
                        "250 2.1.5 OK".into()
                    }
                    Behaviour::TemporaryFirst(n) => {
                        state.behaviours.insert(key, Behaviour::TemporaryFirst(n - 1));
                        "451 4.3.0 Try again later".into()
                    }
                    Behaviour::Permanent => "550 5.1.1 No such mailbox here".into(),
                    Behaviour::Reply(reply) => reply.into(),
                }
            }
            "DATA" => {
                if mail_from.is_none() || rcpt_to.is_empty() {
                    write.write_all(b"503 5.5.1 No valid recipients\r\n").await?;
                    continue;
                }
                write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    // Dot-unstuffing (RFC 5321 4.5.2): a line the client began with an
                    // extra dot loses it.
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                state.lock().unwrap().received.push(Received {
                    mail_from: mail_from.take().unwrap_or_default(),
                    rcpt_to: std::mem::take(&mut rcpt_to),
                    data,
                });
                "250 2.0.0 Queued".into()
            }
            "RSET" => {
                mail_from = None;
                rcpt_to.clear();
                "250 2.0.0 OK".into()
            }
            "NOOP" => "250 2.0.0 OK".into(),
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => "502 5.5.2 Command not recognised".into(),
        };
        write.write_all(format!("{reply}\r\n").as_bytes()).await?;
    }
}
