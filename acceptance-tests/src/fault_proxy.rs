//! A TCP proxy on loopback that breaks some of the connections it carries, put between the
//! vault and a real storage server (moto) to test what the network does to a DR tool: resets
//! in the middle of an upload or a download, stalls longer than a request's timeout, responses
//! cut short, and answers from "the server" of 500 and 503 Slow Down.
//!
//! Written for the tests rather than taken from a library: the fault proxies that exist
//! (toxiproxy, …) are services of their own to install and drive over an API; this is one
//! thread per connection and a seeded choice of fault, so a run replays from its seed.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What happens to one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// The connection is reset after part of the request went up.
    ResetUpload,
    /// The connection is reset after part of the response came down.
    ResetDownload,
    /// Nothing comes back for a while (longer than the client's request timeout).
    Stall,
    /// The response is cut short and the connection closed cleanly (a FIN mid-body).
    Truncate,
    /// The first request is answered 500 Internal Error by the proxy itself.
    InternalError,
    /// The first request is answered 503 Slow Down, as S3 throttles.
    SlowDown,
}

const FAULTS: [Fault; 6] = [
    Fault::ResetUpload,
    Fault::ResetDownload,
    Fault::Stall,
    Fault::Truncate,
    Fault::InternalError,
    Fault::SlowDown,
];

struct Shared {
    /// Connections broken, per thousand.
    rate: AtomicU32,
    rng: Mutex<crate::Rng>,
    injected: Mutex<BTreeMap<Fault, usize>>,
    connections: AtomicU32,
    stall: Duration,
    stopped: AtomicBool,
}

impl Shared {
    fn next(&self) -> u64 {
        self.rng.lock().unwrap().next_u64()
    }

    fn choose(&self) -> Option<(Fault, usize)> {
        self.connections.fetch_add(1, Ordering::Relaxed);
        if self.next() % 1000 >= u64::from(self.rate.load(Ordering::Relaxed)) {
            return None;
        }
        let fault = FAULTS[(self.next() % FAULTS.len() as u64) as usize];
        // Where in the stream it strikes: inside headers or deep in a body.
        let at = (self.next() % (256 * 1024)) as usize;
        *self.injected.lock().unwrap().entry(fault).or_default() += 1;
        Some((fault, at))
    }
}

/// A running proxy; it stops accepting when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` that breaks `per_mille` of the connections, choosing
    /// faults from `seed`; a stall lasts `stall`.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub fn start(upstream: SocketAddr, per_mille: u32, seed: u64, stall: Duration) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            rate: AtomicU32::new(per_mille),
            rng: Mutex::new(crate::Rng::new(seed)),
            injected: Mutex::new(BTreeMap::new()),
            connections: AtomicU32::new(0),
            stall,
            stopped: AtomicBool::new(false),
        });
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stopped.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                let fault = accepting.choose();
                let shared = accepting.clone();
                std::thread::spawn(move || carry(client, upstream, fault, &shared));
            }
        });
        FaultProxy { addr, shared }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes the share of connections broken from now on.
    pub fn set_rate(&self, per_mille: u32) {
        self.shared.rate.store(per_mille, Ordering::Relaxed);
    }

    /// The faults injected so far, by kind.
    pub fn injected(&self) -> BTreeMap<Fault, usize> {
        self.shared.injected.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u32 {
        self.shared.connections.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Carries one connection, breaking it as `fault` says.
fn carry(client: TcpStream, upstream: SocketAddr, fault: Option<(Fault, usize)>, shared: &Shared) {
    match fault {
        Some((Fault::InternalError, _)) => return answer(client, 500, "InternalError"),
        Some((Fault::SlowDown, _)) => return answer(client, 503, "SlowDown"),
        _ => {}
    }
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let (up_limit, down_limit, reset) = match fault {
        Some((Fault::ResetUpload, at)) => (Some(at), None, true),
        Some((Fault::ResetDownload, at)) => (None, Some(at), true),
        Some((Fault::Truncate, at)) => (None, Some(at), false),
        _ => (None, None, false),
    };
    let stall = matches!(fault, Some((Fault::Stall, _))).then_some(shared.stall);
    let connection = Arc::new(Connection {
        client: client.try_clone().unwrap(),
        server: server.try_clone().unwrap(),
        resetting: AtomicBool::new(false),
    });
    let up = connection.clone();
    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let upload = std::thread::spawn(move || pump(c2, s2, up_limit, None, reset, &up));
    pump(server, client, down_limit, stall, reset, &connection);
    let _ = upload.join();
}

/// Both sides of one carried connection, for a reset.
struct Connection {
    client: TcpStream,
    server: TcpStream,
    resetting: AtomicBool,
}

impl Connection {
    /// Resets both sides: with a zero linger the last close sends RST, not FIN; shutting the
    /// read sides (which sends nothing) wakes both pumps so they let go of their handles.
    fn reset(&self) {
        self.resetting.store(true, Ordering::SeqCst);
        for socket in [&self.client, &self.server] {
            let _ = socket2::SockRef::from(socket).set_linger(Some(Duration::ZERO));
            let _ = socket.shutdown(Shutdown::Read);
        }
    }
}

/// Copies `from` to `to` until either closes; after `limit` bytes the connection is broken:
/// reset (RST both ways) or, for a truncation, `to` closed cleanly mid-stream.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    limit: Option<usize>,
    stall: Option<Duration>,
    reset: bool,
    connection: &Connection,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut carried = 0usize;
    let mut stalled = false;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let (Some(pause), false) = (stall, stalled) {
            std::thread::sleep(pause);
            stalled = true;
        }
        let n = match limit {
            Some(limit) if carried + n >= limit => {
                let _ = to.write_all(&buf[..limit - carried]);
                if reset {
                    connection.reset();
                } else {
                    let _ = to.shutdown(Shutdown::Both);
                }
                return;
            }
            _ => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        carried += n;
    }
    if !connection.resetting.load(Ordering::SeqCst) {
        let _ = to.shutdown(Shutdown::Write);
    }
}

/// Reads one request (head and body) and answers it with an S3 error, then closes.
fn answer(mut client: TcpStream, status: u16, code: &str) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let length = String::from_utf8_lossy(&head)
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<u64>().ok())?
        })
        .unwrap_or(0);
    let _ = std::io::copy(&mut (&mut client).take(length), &mut std::io::sink());
    let reason = if status == 503 {
        "Slow Down"
    } else {
        "Internal Server Error"
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error>"
    );
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(response.as_bytes());
    let _ = client.shutdown(Shutdown::Both);
}
