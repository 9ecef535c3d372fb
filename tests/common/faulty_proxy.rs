//! A TCP proxy between vidpipe and Garage that injects faults: one request
//! per connection (it asks the server to close after answering), and a
//! fixed pattern of requests answered with 503 SlowDown or cut off with the
//! connection dropped before any answer. Counts what it did, and the bytes
//! each request's answer carried (without faults: a counting proxy).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Counters of what the proxy did.
#[derive(Default)]
pub struct Faults {
    pub requests: AtomicUsize,
    pub slow_downs: AtomicUsize,
    pub resets: AtomicUsize,
    /// Every request line passed on (`GET /bucket/key?...`) and the bytes
    /// of its answer.
    pub answered: std::sync::Mutex<Vec<(String, u64)>>,
}

impl Faults {
    /// Bytes answered to requests of `method` whose line contains `path`.
    pub fn bytes_for(&self, method: &str, path: &str) -> u64 {
        let answered = self.answered.lock().expect("lock");
        answered
            .iter()
            .filter(|(line, _)| line.starts_with(method) && line.contains(path))
            .map(|(_, bytes)| bytes)
            .sum()
    }
}

/// A running proxy; it stops when the test process ends.
pub struct FaultyProxy {
    pub endpoint: String,
    pub faults: Arc<Faults>,
}

const SLOW_DOWN: &str = "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nConnection: close\r\nContent-Length: 118\r\n\r\n\
<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";

impl FaultyProxy {
    /// Proxies to `upstream` without faults, counting.
    pub fn counting(upstream: &str) -> FaultyProxy {
        Self::start(upstream, 0)
    }

    /// Proxies to `upstream` (`127.0.0.1:PORT`); every `every`-th request
    /// gets a 503 SlowDown and every `every`-th + 2 is reset (none when
    /// `every` is 0).
    pub fn start(upstream: &str, every: usize) -> FaultyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let faults = Arc::new(Faults::default());
        let upstream = upstream.to_string();
        let counters = faults.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let n = counters.requests.fetch_add(1, Ordering::SeqCst);
                let counters = counters.clone();
                let upstream = upstream.clone();
                std::thread::spawn(move || serve(client, &upstream, n, every, &counters));
            }
        });
        FaultyProxy {
            endpoint: format!("http://127.0.0.1:{port}"),
            faults,
        }
    }
}

fn serve(mut client: TcpStream, upstream: &str, n: usize, every: usize, faults: &Faults) {
    let Some(head) = read_head(&mut client) else {
        return;
    };
    if every > 0 && n % every == every - 1 {
        faults.slow_downs.fetch_add(1, Ordering::SeqCst);
        let _ = client.write_all(SLOW_DOWN.as_bytes());
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    if every > 0 && n % every == (every + 1) % every {
        faults.resets.fetch_add(1, Ordering::SeqCst);
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream) else {
        return;
    };
    let text = String::from_utf8_lossy(&head).to_string();
    let mut lines: Vec<&str> = text.trim_end_matches("\r\n\r\n").split("\r\n").collect();
    lines.retain(|l| !l.to_ascii_lowercase().starts_with("connection:"));
    let rewritten = format!("{}\r\nConnection: close\r\n\r\n", lines.join("\r\n"));
    if server.write_all(rewritten.as_bytes()).is_err() {
        return;
    }
    let (Ok(mut client_read), Ok(mut server_write)) = (client.try_clone(), server.try_clone())
    else {
        return;
    };
    let upload = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_read, &mut server_write);
        let _ = server_write.shutdown(Shutdown::Write);
    });
    let answered = std::io::copy(&mut server, &mut client).unwrap_or(0);
    let line = text.lines().next().unwrap_or_default().to_string();
    if let Ok(mut all) = faults.answered.lock() {
        all.push((line, answered));
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    let _ = upload.join();
}

/// Reads up to the end of the request head (`\r\n\r\n`), byte by byte so
/// no body byte is consumed.
fn read_head(client: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
        if head.len() > 64 * 1024 {
            return None;
        }
    }
    Some(head)
}
