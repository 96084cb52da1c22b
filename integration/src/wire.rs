//! A fault-injecting HTTP proxy in front of the S3 test server, for faults
//! *below* `object_store`'s retry layer: answers of 503, bodies cut short
//! and connections reset mid-body reach the client's HTTP stack as they
//! would from a real network, so what is tested is the one retry layer
//! the backend has (`object_store`'s `RetryConfig`). Every request is
//! counted, so a test can say how many a failing GET made.
//!
//! One request per connection: each is forwarded on a fresh upstream
//! connection with `Connection: close`, and the answer relayed whole
//! before the client's connection is closed. Signatures stay valid: the
//! request is passed on byte for byte but for that one header, which
//! SigV4 does not sign.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to one GET.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireFault {
    /// Answers `503 Slow Down` itself; the server never sees the request.
    Unavailable,
    /// Forwards, then relays the headers and half the body, and closes.
    CutBody,
    /// Forwards, then relays the headers and half the body, and resets
    /// the connection (RST).
    Reset,
}

#[derive(Debug, Default)]
struct State {
    /// Faults for the next GETs whose path contains the filter.
    plan: VecDeque<WireFault>,
    filter: String,
    /// Fail every matching GET, for good.
    always: Option<WireFault>,
    /// Every request seen: (method, path).
    requests: Vec<(String, String)>,
    /// Held this long before it is passed on (cloud latency on loopback).
    delay: std::time::Duration,
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct WireProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WireProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WireProxy {
    /// Starts a proxy on a free loopback port in front of `upstream`
    /// (`127.0.0.1:8333`), on the current Tokio runtime.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(client, upstream, state).await;
                });
            }
        });
        Ok(WireProxy { addr, state, task })
    }

    /// `http://127.0.0.1:PORT`, the endpoint to give the client.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next `n` GETs whose path contains `filter` meet `fault`.
    pub fn fault_next_gets(&self, filter: &str, fault: WireFault, n: usize) {
        let mut state = self.state();
        state.filter = filter.to_owned();
        state.plan = std::iter::repeat_n(fault, n).collect();
    }

    /// Every GET whose path contains `filter` meets `fault` (`None`:
    /// stop).
    pub fn fault_every_get(&self, filter: &str, fault: Option<WireFault>) {
        let mut state = self.state();
        state.filter = filter.to_owned();
        state.always = fault;
    }

    /// Holds every request `delay` before passing it on: the first-byte
    /// latency of a cloud store, on loopback.
    pub fn set_delay(&self, delay: std::time::Duration) {
        self.state().delay = delay;
    }

    /// Faults planned and not met yet.
    pub fn pending(&self) -> usize {
        self.state().plan.len()
    }

    /// Requests seen so far whose method is `method` and path contains
    /// `filter`.
    pub fn count(&self, method: &str, filter: &str) -> usize {
        self.state()
            .requests
            .iter()
            .filter(|(m, path)| m == method && path.contains(filter))
            .count()
    }
}

/// Serves one client connection: one request.
async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
) -> std::io::Result<()> {
    let (head, mut rest) = read_head(&mut client).await?;
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut words = text.split_whitespace();
    let method = words.next().unwrap_or_default().to_owned();
    let path = words.next().unwrap_or_default().to_owned();
    let length = header(&text, "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    while rest.len() < length {
        let mut buf = vec![0u8; length - rest.len()];
        let n = client.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        rest.extend_from_slice(&buf[..n]);
    }
    let (fault, delay) = {
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        state.requests.push((method.clone(), path.clone()));
        let fault = if method == "GET" && path.contains(&state.filter) {
            state.plan.pop_front().or(state.always)
        } else {
            None
        };
        (fault, state.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if fault == Some(WireFault::Unavailable) {
        let body = "<Error><Code>SlowDown</Code><Message>injected</Message></Error>";
        let answer = format!(
            "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        client.write_all(answer.as_bytes()).await?;
        return client.shutdown().await;
    }
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(&close_after(&text)).await?;
    server.write_all(&rest).await?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer).await?;
    match fault {
        Some(fault @ (WireFault::CutBody | WireFault::Reset)) => {
            let body_at = find(&answer, b"\r\n\r\n").map_or(answer.len(), |at| at + 4);
            let half = body_at + (answer.len() - body_at) / 2;
            client.write_all(&answer[..half]).await?;
            client.flush().await?;
            if fault == WireFault::Reset {
                // SO_LINGER 0: closing sends RST instead of FIN.
                client.set_zero_linger()?;
                drop(client);
                return Ok(());
            }
            client.shutdown().await
        }
        _ => {
            client.write_all(&answer).await?;
            client.shutdown().await
        }
    }
}

/// Reads up to the end of the request head; returns it and any bytes of
/// the body read with it.
async fn read_head(client: &mut TcpStream) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(at) = find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(at + 4);
            return Ok((buf, rest));
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The head with `Connection: close` in place of any `Connection` header.
fn close_after(head: &str) -> Vec<u8> {
    let mut out = String::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.split("\r\n").find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
