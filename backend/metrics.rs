//! Prometheus metrics, served as text at `/metrics`.
//!
//! Labels are kept to small fixed sets (a route label, not the raw path; an operation
//! type, not its client-chosen name) so that no client can grow the series without end.

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::db::Db;

pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    graphql_operations: IntCounterVec,
    db_connections: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("kettle".into()), None).expect("a valid metrics prefix");
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route, method and status"),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency by route")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["route"],
        )
        .expect("valid metric");
        let graphql_operations = IntCounterVec::new(
            Opts::new("graphql_operations_total", "GraphQL operations by type and outcome"),
            &["type", "outcome"],
        )
        .expect("valid metric");
        let db_connections =
            IntGaugeVec::new(Opts::new("db_pool_connections", "Database pool connections by state"), &["state"])
                .expect("valid metric");
        for collector in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(graphql_operations.clone()),
            Box::new(db_connections.clone()),
        ] {
            registry.register(collector).expect("each metric registered once");
        }
        Metrics { registry, http_requests, http_duration, graphql_operations, db_connections }
    }

    pub fn observe_http(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.http_requests.with_label_values(&[route, method, &status.to_string()]).inc();
        self.http_duration.with_label_values(&[route]).observe(seconds);
    }

    /// `kind` is query, mutation or subscription; `outcome` is ok or error.
    pub fn observe_graphql(&self, kind: &str, outcome: &str) {
        self.graphql_operations.with_label_values(&[kind, outcome]).inc();
    }

    pub fn render(&self, db: &Db) -> String {
        let size = i64::from(db.pool.size());
        let idle = db.pool.num_idle() as i64;
        self.db_connections.with_label_values(&["idle"]).set(idle);
        self.db_connections.with_label_values(&["in_use"]).set((size - idle).max(0));
        self.db_connections.with_label_values(&["max"]).set(i64::from(db.pool.options().get_max_connections()));
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
