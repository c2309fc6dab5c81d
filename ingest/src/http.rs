//! HTTP endpoints (hyper): `/healthz` (the process answers), `/readyz` (broker listening, WAL
//! taking appends, database reachable; 503 with the reasons otherwise) and `/metrics`
//! (Prometheus text format).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tracing::{debug, warn};

use crate::health::Health;
use crate::log_throttle::Throttle;
use crate::shutdown::Shutdown;

/// At most one line per interval about failed HTTP accepts.
static ACCEPT_LOG: Throttle = Throttle::new(std::time::Duration::from_secs(10));

/// What the endpoints read.
#[derive(Clone)]
pub struct HttpState {
    pub health: Arc<Health>,
    pub metrics: Option<PrometheusHandle>,
}

/// Binds the HTTP listener (so a bad address fails at start) and returns its address and the
/// serving future.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until `shutdown`.
pub async fn serve(listener: TcpListener, state: HttpState, shutdown: Shutdown) {
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // Out of descriptors, most often: count it, say it once in a while, and
                    // back off instead of spinning.
                    metrics::counter!(crate::metrics::ACCEPT_ERRORS, "listener" => "http", "reason" => "error").increment(1);
                    if let Some(n) = ACCEPT_LOG.hit() {
                        warn!(error = %e, events = n, "cannot accept HTTP connections");
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => return,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(&state, req)) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                debug!(error = %e, "HTTP connection ended with an error");
            }
        });
    }
}

fn route(state: &HttpState, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => {
            let r = state.health.readiness();
            let status = if r.ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            let body = serde_json::to_vec_pretty(&r).unwrap_or_default();
            Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
                .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "error\n"))
        }
        "/metrics" => match &state.metrics {
            Some(h) => Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "text/plain; version=0.0.4")
                .body(Full::new(Bytes::from(h.render())))
                .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "error\n")),
            None => text(StatusCode::NOT_FOUND, "metrics are not enabled\n"),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /healthz, /readyz or /metrics\n",
        ),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}

/// `ingest healthcheck`: GET /readyz on the local service; true when it answers 200.
pub async fn check_ready(addr: SocketAddr) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let connect = tokio::net::TcpStream::connect(addr);
    let mut stream = tokio::time::timeout(std::time::Duration::from_secs(3), connect)
        .await
        .map_err(|_| format!("no answer from {addr} within 3 s"))?
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let req = format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(3),
        stream.read_to_end(&mut buf),
    )
    .await
    .map_err(|_| "timed out reading /readyz".to_string())?
    .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf);
    if text.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(text
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or(&text)
            .trim()
            .to_string())
    }
}
