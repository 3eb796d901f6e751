//! The HTTP/1.1 server of `profefe serve --http native`: connections, keep-alive, the read
//! deadline and the body limit are handled here (tokio + hyper, on threads of their own), so no
//! Python thread wakes per socket event. Each request reaches Python whole, on one of two queues:
//! the uploads to the fast path (profefe's ingest route), which one Python thread takes in
//! batches, and every other request, which the WSGI threads take one at a time. Python answers
//! each with `answer`; a request dropped unanswered gets a 500.

use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONTENT_LENGTH, SERVER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tokio::sync::{oneshot, watch, Semaphore};

const MAX_HEAD: usize = 256 << 10;
/// Connections served at once, as waitress's `connection_limit`: each may hold a body of up to
/// the limit in memory.
const MAX_CONNECTIONS: usize = 100;
/// A body at least this large is checked with the worker thread handed over to the others' work
/// first, so a long check does not hold up the connections that thread serves.
const LONG_CHECK: usize = 256 << 10;

/// What Python sends back for one request.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// The fast path's body, checked as `check` does, on the server's threads: (info, protobuf size).
type Checked = Option<crate::Result<(crate::check::Info, usize)>>;

struct Shared {
    max_body: usize,
    read_timeout: Duration,
    fast_path: Option<String>,
    /// Check the fast path's bodies within this many bytes once inflated.
    check_limit: Option<usize>,
    fast: Sender<PendingRequest>,
    other: Sender<PendingRequest>,
    /// The remote address of each connection closed because its request came too slowly.
    slow: Sender<String>,
}

/// A header value as WSGI wants it: each byte one character (ISO-8859-1).
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

fn from_latin1(text: &str) -> Option<Vec<u8>> {
    text.chars().map(|c| u8::try_from(c as u32).ok()).collect()
}

/// profefe's error envelope, for the answers given here without Python.
fn envelope(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = format!("{{\"code\": {}, \"error\": \"{}\"}}\n", status.as_u16(), message);
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(hyper::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(SERVER, HeaderValue::from_static("profefe"));
    resp
}

fn response(answer: Answer) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(answer.body)));
    *resp.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    for (name, value) in answer.headers {
        let lower = name.to_ascii_lowercase();
        // hyper frames the body itself; a WSGI app's hop-by-hop headers are not its to set.
        if matches!(lower.as_str(), "connection" | "keep-alive" | "transfer-encoding" | "upgrade") {
            continue;
        }
        let (Ok(n), Some(v)) = (HeaderName::from_bytes(lower.as_bytes()), from_latin1(&value)) else {
            continue;
        };
        if let Ok(v) = HeaderValue::from_bytes(&v) {
            headers.append(n, v);
        }
    }
    headers.insert(SERVER, HeaderValue::from_static("profefe"));
    resp
}

#[derive(Debug)]
struct ReadFailed;

impl std::fmt::Display for ReadFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request could not be read whole in time")
    }
}

impl std::error::Error for ReadFailed {}

/// Reads the request within its limits, queues it for Python and waits for the answer. An
/// error closes the connection without an answer: a body cut short, or not sent in time.
async fn handle(req: Request<Incoming>, shared: Arc<Shared>, remote: SocketAddr) -> Result<Response<Full<Bytes>>, ReadFailed> {
    let received = Instant::now();
    let (parts, body) = req.into_parts();
    let content_length = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok());
    let mut over = content_length.is_some_and(|n| n > shared.max_body as u64);
    let body = if over {
        Vec::new() // not read: the answer says it is too large, and the connection closes after it
    } else {
        match tokio::time::timeout(shared.read_timeout, Limited::new(body, shared.max_body).collect()).await {
            Err(_) => {
                let _ = shared.slow.send(remote.ip().to_string());
                return Err(ReadFailed);
            }
            Ok(Ok(collected)) => collected.to_bytes().to_vec(),
            Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
                over = true;
                Vec::new()
            }
            Ok(Err(_)) => return Err(ReadFailed),
        }
    };
    let path = parts.uri.path().to_owned();
    let fast = parts.method == Method::POST && shared.fast_path.as_deref() == Some(path.as_str());
    let checked = match shared.check_limit {
        Some(limit) if fast && !over && !body.is_empty() => {
            let check = || crate::error::guarded(|| crate::checked(&body, limit).map(|(raw, info)| (info, raw.len())));
            Some(if body.len() >= LONG_CHECK { tokio::task::block_in_place(check) } else { check() })
        }
        _ => None,
    };
    let (reply, answered) = oneshot::channel();
    let pending = PendingRequest {
        method: parts.method.as_str().to_owned(),
        path,
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: parts.headers.iter().map(|(k, v)| (k.as_str().to_owned(), latin1(v.as_bytes()))).collect(),
        body,
        content_length,
        over,
        remote,
        received,
        checked: Mutex::new(checked),
        reply: Mutex::new(Some(reply)),
    };
    let queue = if fast { &shared.fast } else { &shared.other };
    if queue.send(pending).is_err() {
        return Ok(envelope(StatusCode::SERVICE_UNAVAILABLE, "service unavailable: the collector is stopping"));
    }
    Ok(match answered.await {
        Ok(answer) => response(answer),
        Err(_) => envelope(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    })
}

/// Accepts until told to stop, then lets every request in hand finish (idle connections are
/// closed at once) for at most the drain time; true when all of them did.
async fn accept(listener: tokio::net::TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<Option<Duration>>) -> bool {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    // A head over 256 KiB is refused (431), as waitress refuses one. Header names go out as
    // waitress and Go send them (Content-Type), for clients that look them up as written.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(shared.read_timeout)
        .max_buf_size(MAX_HEAD)
        .title_case_headers(true);
    let open = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        // At the limit, no more are accepted until one closes: they wait in the listen backlog.
        let permit = tokio::select! {
            permit = open.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stop.changed() => break,
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    let _ = stream.set_nodelay(true);
                    let slow = shared.slow.clone();
                    let shared = shared.clone();
                    let conn = builder.serve_connection(
                        TokioIo::new(stream),
                        service_fn(move |req| handle(req, shared.clone(), remote)),
                    );
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            if e.is_timeout() {
                                let _ = slow.send(remote.ip().to_string());
                            }
                        }
                        drop(permit);
                    });
                }
                // Out of file descriptors and the like: wait for some to be closed.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            _ = stop.changed() => break,
        }
    }
    drop(listener); // refused from now on, so a load balancer sends new connections elsewhere
    let drain = stop.borrow().unwrap_or_default();
    tokio::time::timeout(drain, graceful.shutdown()).await.is_ok()
}

/// A request read whole, waiting for Python: its parts, and `answer` to send the reply.
#[pyclass(frozen, module = "shared.pprof._native")]
pub struct PendingRequest {
    #[pyo3(get)]
    method: String,
    /// The path as sent, percent-encoded.
    #[pyo3(get)]
    path: String,
    #[pyo3(get)]
    query: String,
    /// Every header as (lower-case name, value as ISO-8859-1), in the order sent.
    #[pyo3(get)]
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    #[pyo3(get)]
    content_length: Option<u64>,
    /// The body was over the limit and was not read (`body` is empty).
    #[pyo3(get)]
    over: bool,
    remote: SocketAddr,
    received: Instant,
    checked: Mutex<Checked>,
    reply: Mutex<Option<oneshot::Sender<Answer>>>,
}

#[pymethods]
impl PendingRequest {
    /// The body as read (a copy each time it is asked for).
    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.body)
    }

    #[getter]
    fn remote_addr(&self) -> String {
        self.remote.ip().to_string()
    }

    #[getter]
    fn remote_port(&self) -> u16 {
        self.remote.port()
    }

    /// Seconds since the request was read whole.
    fn elapsed(&self) -> f64 {
        self.received.elapsed().as_secs_f64()
    }

    /// The summary `_native.check(body, limit)` gives, computed when the request was read (it
    /// raises that call's error); None when the body was not checked there. Once only.
    fn checked(&self, py: Python<'_>) -> PyResult<Option<crate::python::InfoTuple>> {
        let taken = self.checked.lock().map_err(|_| PyValueError::new_err("poisoned"))?.take();
        match taken {
            None => Ok(None),
            Some(Ok((info, size))) => Ok(Some(crate::python::info_tuple(info, size))),
            Some(Err(e)) => Err(crate::python::raise(py, e)),
        }
    }

    /// Sends the reply; False when it was answered already or the client has gone.
    fn answer(&self, status: u16, headers: Vec<(String, String)>, body: &[u8]) -> PyResult<bool> {
        if !(100..=999).contains(&status) {
            return Err(PyValueError::new_err(format!("not an HTTP status: {status}")));
        }
        let Some(reply) = self.reply.lock().map_err(|_| PyValueError::new_err("poisoned"))?.take() else {
            return Ok(false);
        };
        Ok(reply.send(Answer { status, headers, body: body.to_vec() }).is_ok())
    }
}

/// The server, listening on a socket Python bound (a copy of its descriptor is taken, so the
/// caller closes its own).
#[pyclass(frozen, module = "shared.pprof._native")]
pub struct HttpServer {
    fast: Receiver<PendingRequest>,
    other: Receiver<PendingRequest>,
    slow: Receiver<String>,
    /// Dropped with the server, which stops it (no drain) if `shutdown` was not called.
    stop: watch::Sender<Option<Duration>>,
    done: Receiver<bool>,
    result: Mutex<Option<bool>>,
}

#[pymethods]
impl HttpServer {
    #[new]
    #[pyo3(signature = (fd, max_body, read_timeout, fast_path = None, check_limit = None, threads = 2))]
    fn new(
        fd: RawFd,
        max_body: usize,
        read_timeout: f64,
        fast_path: Option<String>,
        check_limit: Option<usize>,
        threads: usize,
    ) -> PyResult<Self> {
        if !(read_timeout > 0.0 && read_timeout.is_finite()) || threads == 0 {
            return Err(PyValueError::new_err("read_timeout must be positive and threads at least 1"));
        }
        let os = |e: std::io::Error| PyOSError::new_err(e.to_string());
        // SAFETY: the caller passes a descriptor it keeps open for this call; a copy is taken.
        let owned = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned().map_err(os)?;
        let std_listener = std::net::TcpListener::from(owned);
        std_listener.set_nonblocking(true).map_err(os)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("http")
            .enable_all()
            .build()
            .map_err(os)?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(std_listener).map_err(os)?
        };
        let (fast_tx, fast) = crossbeam_channel::unbounded();
        let (other_tx, other) = crossbeam_channel::unbounded();
        let (slow_tx, slow) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            max_body,
            read_timeout: Duration::from_secs_f64(read_timeout),
            fast_path,
            check_limit,
            fast: fast_tx,
            other: other_tx,
            slow: slow_tx,
        });
        let (stop, stopped) = watch::channel(None);
        let (done_tx, done) = crossbeam_channel::bounded(1);
        std::thread::Builder::new()
            .name("http-accept".into())
            .spawn(move || {
                let drained = runtime.block_on(accept(listener, shared, stopped));
                runtime.shutdown_timeout(Duration::from_secs(1));
                let _ = done_tx.send(drained);
            })
            .map_err(os)?;
        Ok(HttpServer { fast, other, slow, stop, done, result: Mutex::new(None) })
    }

    /// Up to `most` requests of the fast path: waits at most `timeout` seconds for the first,
    /// then takes only those already queued.
    fn take_batch(&self, py: Python<'_>, most: usize, timeout: f64) -> PyResult<Vec<Py<PendingRequest>>> {
        let taken = py.allow_threads(|| take(&self.fast, most.max(1), timeout));
        taken.into_iter().map(|r| Py::new(py, r)).collect()
    }

    /// One request of the others, or None after `timeout` seconds.
    fn take(&self, py: Python<'_>, timeout: f64) -> PyResult<Option<Py<PendingRequest>>> {
        let mut taken = py.allow_threads(|| take(&self.other, 1, timeout));
        taken.pop().map(|r| Py::new(py, r)).transpose()
    }

    /// The remote addresses of the connections closed since the last call because their
    /// request took longer than the read timeout to arrive.
    fn slow_clients(&self) -> Vec<String> {
        self.slow.try_iter().collect()
    }

    /// Stops accepting and lets the requests in hand finish (Python's threads must keep
    /// answering) for at most `drain` seconds; returns at once, `wait` says when it is over.
    fn shutdown(&self, drain: f64) {
        let _ = self.stop.send(Some(Duration::from_secs_f64(drain.max(0.0))));
    }

    /// Waits up to `timeout` seconds for the shutdown to end: True when every request in hand
    /// was answered, False when the drain time ran out first, None while it goes on (so the
    /// caller's thread can take a signal between two waits).
    fn wait(&self, py: Python<'_>, timeout: f64) -> Option<bool> {
        if let Some(drained) = *self.result.lock().ok()? {
            return Some(drained);
        }
        let wait = Duration::from_secs_f64(timeout.clamp(0.0, 3600.0));
        // Not under the lock: another thread holding the GIL could wait for it for ever.
        let drained = match py.allow_threads(|| self.done.recv_timeout(wait)) {
            Ok(drained) => drained,
            Err(RecvTimeoutError::Timeout) => return None,
            Err(RecvTimeoutError::Disconnected) => false, // the server's thread panicked
        };
        *self.result.lock().ok()? = Some(drained);
        Some(drained)
    }
}

fn take(queue: &Receiver<PendingRequest>, most: usize, timeout: f64) -> Vec<PendingRequest> {
    let wait = Duration::from_secs_f64(timeout.clamp(0.0, 3600.0));
    let Ok(first) = queue.recv_timeout(wait) else {
        return Vec::new();
    };
    let mut taken = vec![first];
    taken.extend(queue.try_iter().take(most - 1));
    taken
}
