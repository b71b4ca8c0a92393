//! Metric names and the Prometheus recorder. Every metric the server
//! exports is written through a function here.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once; later calls reuse
/// it). `None` if another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(
                        "roomstate_wal_fsync_seconds".into(),
                    ),
                    &[
                        0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
                        0.05, 0.1, 0.25, 1.0,
                    ],
                )
                .ok()?
                .install_recorder()
                .ok()
        })
        .as_ref()
}

/// The Prometheus text of every metric.
#[must_use]
pub fn render() -> String {
    HANDLE
        .get()
        .and_then(Option::as_ref)
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

/// A vendor API request answered, by API and HTTP status.
pub fn request(vendor: &'static str, api: &'static str, status: u16) {
    // Each thread keeps the counter handles it used: `counter!` with
    // labels builds a key and looks it up in the registry on every call
    // (about 1,700 instructions per request); a handle is one atomic add.
    // The keys are few: one vendor, a fixed set of APIs, the statuses the
    // vendors answer with.
    REQUESTS.with(|cache| match cache.try_borrow_mut() {
        Ok(mut cache) => cache
            .entry((vendor, api, status))
            .or_insert_with(|| request_counter(vendor, api, status))
            .increment(1),
        Err(_) => request_counter(vendor, api, status).increment(1),
    });
}

thread_local! {
    static REQUESTS: std::cell::RefCell<
        std::collections::HashMap<(&'static str, &'static str, u16), metrics::Counter>,
    > = std::cell::RefCell::new(std::collections::HashMap::new());
}

fn request_counter(vendor: &'static str, api: &'static str, status: u16) -> metrics::Counter {
    let status: std::borrow::Cow<'static, str> = match status {
        200 => "200".into(),
        400 => "400".into(),
        401 => "401".into(),
        403 => "403".into(),
        404 => "404".into(),
        429 => "429".into(),
        500 => "500".into(),
        other => other.to_string().into(),
    };
    counter!("roomstate_requests_total", "vendor" => vendor, "api" => api, "status" => status)
}

/// A request refused, by class (`auth`, `busy`, `bad_input`, `too_large`,
/// or the engine's rejection class).
pub fn rejection(class: &str) {
    counter!("roomstate_rejections_total", "class" => class.to_owned()).increment(1);
}

/// The rooms of a shard.
pub fn set_rooms(shard: usize, rooms: usize) {
    gauge!("roomstate_rooms", "shard" => shard.to_string()).set(rooms as f64);
}

/// Members present, changed by `delta`.
pub fn members_delta(delta: i64) {
    gauge!("roomstate_members").increment(delta as f64);
}

/// Open WebSocket subscriptions, changed by `delta`.
pub fn connections(delta: i64) {
    gauge!("roomstate_ws_connections").increment(delta as f64);
}

/// One log commit's sync time.
pub fn fsync_latency(d: Duration) {
    histogram!("roomstate_wal_fsync_seconds").record(d.as_secs_f64());
}

/// Depth of a WebSocket queue after a push.
pub fn ws_queue_depth(depth: usize) {
    histogram!("roomstate_ws_queue_depth").record(depth as f64);
}

/// A WebSocket event dropped (`overflow`) or a client dropped (`too_slow`).
pub fn ws_dropped(why: &'static str) {
    counter!("roomstate_ws_dropped_total", "why" => why).increment(1);
}
