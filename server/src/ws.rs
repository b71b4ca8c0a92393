//! `GET /ws?token=…[&since=SEQ]`: a WebSocket client joins its token's
//! room as its token's user and receives the room's events as JSON text
//! messages, in sequence order. With `since`, it first receives the events
//! it missed, after `since`, from the room's catch-up history (the
//! engine's `events_since`); when the history no longer reaches back that
//! far, the room's full state (`{"type":"state",…,"seq":N}`) instead. The
//! live events follow, with no gap and no duplicate. Closing the socket is
//! a `Disconnect` (the grace period applies); the server closes it with a
//! reason when the client is too slow, the room is destroyed or the
//! server stops.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response as HttpResponse};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use crate::auth;
use crate::engine_api;
use crate::http::{next_conn_id, now_ms, App};
use crate::limits;
use crate::metrics as m;
use crate::shard::{CloseReason, Job, Subscriber};

/// The query of `/ws`.
#[derive(Deserialize)]
pub struct WsQuery {
    token: Option<String>,
    since: Option<u64>,
}

/// Close code for "policy violation" (RFC 6455).
const CLOSE_POLICY: u16 = 1008;
/// Close code for "try again later".
const CLOSE_AGAIN: u16 = 1013;
/// Close code for "going away".
const CLOSE_AWAY: u16 = 1001;

/// Checks the token, then upgrades.
pub async fn handler(
    State(app): State<Arc<App>>,
    query: Result<Query<WsQuery>, axum::extract::rejection::QueryRejection>,
    upgrade: WebSocketUpgrade,
) -> HttpResponse {
    let Ok(Query(query)) = query else {
        m::rejection("bad_input");
        return (StatusCode::BAD_REQUEST, "bad query").into_response();
    };
    let Some(token) = query.token else {
        m::rejection("auth");
        return (StatusCode::UNAUTHORIZED, "token required").into_response();
    };
    let (room, user) = match auth::verify_token(&app.config.auth.token_secret, &token, now_ms()) {
        Ok(v) => v,
        Err(why) => {
            m::rejection("auth");
            return (StatusCode::UNAUTHORIZED, why).into_response();
        }
    };
    let room = engine_api::canonical_room(app.config.vendor, &room);
    let since = query.since;
    // Clients send next to nothing; tungstenite's default 128 KiB read
    // buffer is zeroed on every read (a tenth of the CPU under load).
    upgrade
        .read_buffer_size(limits::WS_READ_BUFFER)
        .max_message_size(64 << 10)
        .on_upgrade(move |socket| session(app, socket, room, user, since))
}

async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from(reason.to_owned()),
    };
    let _ = tokio::time::timeout(
        limits::WS_SEND_TIMEOUT,
        socket.send(Message::Close(Some(frame))),
    )
    .await;
}

/// Sends `first` and whatever else is queued already (up to
/// [`limits::WS_WRITE_BATCH`] messages) with one flush: one write for
/// the events a batch released, not one per event.
async fn send_queued(
    socket: &mut SplitSink<WebSocket, Message>,
    first: Utf8Bytes,
    rx: &mut mpsc::Receiver<Utf8Bytes>,
    queued: &AtomicUsize,
) -> Result<(), axum::Error> {
    queued.fetch_sub(first.len(), Ordering::Relaxed);
    socket.feed(Message::Text(first)).await?;
    for _ in 1..limits::WS_WRITE_BATCH {
        let Ok(text) = rx.try_recv() else { break };
        queued.fetch_sub(text.len(), Ordering::Relaxed);
        socket.feed(Message::Text(text)).await?;
    }
    socket.flush().await
}

async fn session(app: Arc<App>, socket: WebSocket, room: String, user: String, since: Option<u64>) {
    let id = next_conn_id(&app);
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(limits::WS_QUEUE);
    let reason: CloseReason = Arc::new(Mutex::new(None));
    let queued = Arc::new(AtomicUsize::new(0));
    let sub = Subscriber {
        id,
        room: room.clone(),
        user,
        tx,
        close: Arc::clone(&reason),
        queued_bytes: Arc::clone(&queued),
    };
    let (reply_tx, reply_rx) = oneshot::channel();
    let shard = app.shard(&room).map(|s| s.tx.clone());
    let Some(shard) = shard else {
        return close(socket, CLOSE_AGAIN, "no shard").await;
    };
    if shard
        .try_send(Job::Connect {
            sub,
            since,
            reply: reply_tx,
        })
        .is_err()
    {
        m::rejection("busy");
        return close(socket, CLOSE_AGAIN, "server busy").await;
    }
    match reply_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(response)) => {
            let text = response.body.to_text();
            let cut: String = text.chars().take(120).collect();
            return close(socket, CLOSE_POLICY, &cut).await;
        }
        Err(_) => return close(socket, CLOSE_AWAY, "server stopping").await,
    }
    // The client's side is read by a task of its own, woken only when the
    // socket has something: polled beside the queue, the read path ran
    // once per outgoing wake-up (7 % of an HTTP thread's instructions).
    let (mut sink, mut stream) = socket.split();
    let (stop_reader, mut stopped) = oneshot::channel::<()>();
    let (client_gone, mut gone) = oneshot::channel::<()>();
    let reader = tokio::spawn(async move {
        loop {
            tokio::select! {
                incoming = stream.next() => match incoming {
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                _ = &mut stopped => break,
            }
        }
        drop(client_gone);
        stream
    });
    let ended_by_server = loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(text) => {
                    let sent = tokio::time::timeout(
                        limits::WS_SEND_TIMEOUT,
                        send_queued(&mut sink, text, &mut rx, &queued),
                    )
                    .await;
                    if !matches!(sent, Ok(Ok(()))) {
                        break None;
                    }
                }
                None => {
                    let why = reason.lock().ok().and_then(|r| *r).unwrap_or("server stopping");
                    break Some(why);
                }
            },
            _ = &mut gone => break None,
        }
    };
    let _ = stop_reader.send(());
    let socket = match reader.await {
        Ok(stream) => sink.reunite(stream).ok(),
        Err(_) => None,
    };
    // The shard hears of it first, so a reconnect queued behind this
    // finds the connection dropped (inside its grace).
    let _ = shard.send(Job::Disconnect { id }).await;
    if let (Some(why), Some(socket)) = (ended_by_server, socket) {
        let code = if why == "server stopping" {
            CLOSE_AWAY
        } else {
            CLOSE_POLICY
        };
        close(socket, code, why).await;
    }
}
