//! The Redis peer (issue 9): the mixed workload run against a real
//! `redis-server`, the store a server team would pick instead of the
//! engine, and the engine running the same steps.
//!
//! ```text
//! cargo run -p roomstate-benches --release --bin redis_peer
//! ```
//!
//! Starts its own `redis-server` on a free loopback port (`--save ''
//! --appendonly no`), and stops it at the end (a drop guard kills it, also
//! on a panic). Without `redis-server` on `PATH` it says so and exits 0.
//!
//! The Redis layout, per room `R` (keys hash-tagged `{R}` so one room
//! stays on one cluster slot): `{R}:v` hash key → value, `{R}:o` hash
//! key → owner, `{R}:u:<user>` set of the keys the user owns (all
//! attributes are auto-delete, as in the benchmark profile), `{R}:m` hash
//! user → connections, `{R}:seq` the room's sequence number, `{R}:ql` list
//! of queue keys and `{R}:qh` hash queue key → value. Writes, joins,
//! leaves and queue offers and polls are Lua scripts (`EVALSHA`) doing the
//! engine's checks (owner check per op, best effort; exit by the user's
//! set) and bumping the sequence number and `PUBLISH`ing a notification
//! when they change something, as the engine emits an event. Reads are
//! `HGETALL` of values and owners and `GET` of the number. Requests go in
//! pipelines of [`PIPELINE`], as a server multiplexing many sessions would
//! send them. Redis keeps no per-attribute revision (one more hash would):
//! that favours Redis.
//!
//! Two variants, each measured in [`ROUNDS`] rounds (a round: Redis on
//! the timed steps, then the engine on the same steps [`ENGINE_RUNS`]
//! times, the round's engine figure their median):
//! - without a catch-up history on either side, as the issue defines the
//!   peer: Redis as above, the engine with its history off (whatever
//!   `ROOMSTATE_BENCH_HISTORY` says). Like for like.
//! - with one on both: each script also `XADD`s the change (sequence
//!   number, operator or member, the keys and values) to a per-room
//!   stream `{R}:h` trimmed with `MAXLEN ~` to about the engine's default
//!   number of events (256), as a server team needing catch-up would keep
//!   it on Redis; the engine with its default history (256 events or
//!   64 KiB a room, whichever binds first).
//!
//! After each variant's rounds the bench compares every room's attributes
//! (value and owner), members and queue length in Redis with the
//! engine's, and fails if they differ: both did the same work. With the
//! history it also checks that every room's stream is non-empty, trimmed,
//! and ends at the room's sequence number.
//!
//! Prints:
//! - `redis_server_cpu_us_per_cmd`: the server's `used_cpu_user +
//!   used_cpu_sys` (INFO) over the timed steps, per step;
//! - `engine_cpu_us_per_cmd`: the engine's CPU time over the same steps
//!   (reads through the borrowed view into a JSON reply, events drained),
//!   per step: the thread's CPU clock (`CLOCK_THREAD_CPUTIME_ID`), single
//!   thread;
//! - `redis_cpu_ratio`: the median of the rounds' first over second (the
//!   two lines above are the medians of each side's rounds);
//! - the same three with `_with_history`, for the second variant;
//! - `redis_heap_bytes_per_attr`: growth of `used_memory` while loading
//!   10,000 rooms × 20 attributes (16 B keys, 64 B values, 8 owners per
//!   room, each owner's set; no history), per attribute; compare with
//!   `alloc_report`'s `heap_bytes_per_attr` for the same grid.
//!
//! Redis's figure includes its network I/O with the one client; the
//! engine's does not (it is a library): a server embedding the engine
//! adds its own.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::TcpListener;
use std::process::{Child, Command as Process, ExitCode, Stdio};
use std::time::{Duration, Instant};

use redis::{Connection, Pipeline};
use roomstate::{Command, Engine, Event, Success};
use roomstate_benches::workload::{
    bench_profile_with_history, engine_visit_attributes, run_engine, Grid, Mixed, Step,
    OWNERS_PER_ROOM, SEED,
};

/// Requests per pipeline.
const PIPELINE: usize = 64;

/// Rooms and timed steps of the workload (the standard mixed workload's
/// rooms, five times its steps, so the server's CPU counters, in
/// microseconds, resolve it well).
const ROOMS: usize = 1_000;
const STEPS: usize = 50_000;

/// Timed rounds; the medians are printed.
const ROUNDS: usize = 5;

/// Timed runs of the engine in each round, right after Redis's. One takes
/// about 50 ms, short enough for a neighbour on the VM to double it; the
/// round's figure is their median.
const ENGINE_RUNS: usize = 5;

/// Rooms of the memory grid.
const GRID_ROOMS: usize = 10_000;

// The scripts below are written once for both variants of the peer.
// A line that starts with `--H ` is a Lua comment in the variant without
// history, and code in the variant with it ([`script`]): there each
// change also goes into a per-room stream trimmed to about `HISTORY`
// entries, as a server that needs catch-up would keep it on Redis. Every
// script takes that stream's key as its last key, used or not.

/// The write: `ARGV` = operator, then (`s`|`d`, key, value) per op.
/// Owner check per op, best effort; returns the number of ops applied.
const WRITE: &str = r"
local vals, owners, seqk, uset, hist = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local op = ARGV[1]
local applied = 0
--H local changes = {}
for i = 2, #ARGV, 3 do
  local kind, key = ARGV[i], ARGV[i + 1]
  local owner = redis.call('HGET', owners, key)
  if kind == 's' then
    if not owner then
      redis.call('HSET', vals, key, ARGV[i + 2])
      redis.call('HSET', owners, key, op)
      redis.call('SADD', uset, key)
      applied = applied + 1
--H   changes[#changes + 1] = 's:' .. key; changes[#changes + 1] = ARGV[i + 2]
    elseif owner == op then
      redis.call('HSET', vals, key, ARGV[i + 2])
      applied = applied + 1
--H   changes[#changes + 1] = 's:' .. key; changes[#changes + 1] = ARGV[i + 2]
    end
  elseif owner == op then
    redis.call('HDEL', vals, key)
    redis.call('HDEL', owners, key)
    redis.call('SREM', uset, key)
    applied = applied + 1
--H changes[#changes + 1] = 'd:' .. key; changes[#changes + 1] = ''
  end
end
if applied > 0 then
  local seq = redis.call('INCR', seqk)
  redis.call('PUBLISH', seqk, seq)
--H redis.call('XADD', hist, 'MAXLEN', '~', HISTORY, '*', 'seq', seq, 'op', op, unpack(changes))
end
return applied
";

/// A join: one more connection; the first one is a change.
const JOIN: &str = r"
local c = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if c == 1 then
  local seq = redis.call('INCR', KEYS[2])
  redis.call('PUBLISH', KEYS[2], seq)
--H redis.call('XADD', KEYS[3], 'MAXLEN', '~', HISTORY, '*', 'seq', seq, 'joined', ARGV[1])
end
return c
";

/// A leave: one connection fewer; at zero the user exits and the keys of
/// its set go. Returns -1 if not present, else the keys deleted.
const LEAVE: &str = r"
local members, vals, owners, seqk, uset, hist = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local c = redis.call('HGET', members, ARGV[1])
if not c then return -1 end
if tonumber(c) > 1 then
  redis.call('HINCRBY', members, ARGV[1], -1)
  return 0
end
redis.call('HDEL', members, ARGV[1])
local keys = redis.call('SMEMBERS', uset)
for _, key in ipairs(keys) do
  redis.call('HDEL', vals, key)
  redis.call('HDEL', owners, key)
end
redis.call('DEL', uset)
local seq = redis.call('INCR', seqk)
redis.call('PUBLISH', seqk, seq)
--H local fields = {'seq', seq, 'exited', ARGV[1]}
--H for _, key in ipairs(keys) do fields[#fields + 1] = 'd'; fields[#fields + 1] = key end
--H redis.call('XADD', hist, 'MAXLEN', '~', HISTORY, '*', unpack(fields))
return #keys
";

/// A queue offer: append the key, or update its value in place.
const OFFER: &str = r"
if redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) == 1 then
  redis.call('RPUSH', KEYS[1], ARGV[1])
end
local seq = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', KEYS[3], seq)
--H redis.call('XADD', KEYS[4], 'MAXLEN', '~', HISTORY, '*', 'seq', seq, 'offered', ARGV[1], 'value', ARGV[2])
return 1
";

/// A queue poll of the named key, or of the head when `ARGV[1]` is
/// empty. Returns the value, or false.
const POLL: &str = r"
local key = ARGV[1]
if key == '' then
  key = redis.call('LPOP', KEYS[1])
  if not key then return false end
elseif redis.call('HEXISTS', KEYS[2], key) == 0 then
  return false
else
  redis.call('LREM', KEYS[1], 1, key)
end
local v = redis.call('HGET', KEYS[2], key)
redis.call('HDEL', KEYS[2], key)
local seq = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', KEYS[3], seq)
--H redis.call('XADD', KEYS[4], 'MAXLEN', '~', HISTORY, '*', 'seq', seq, 'polled', key)
return v
";

/// `body` as run: without history, the `--H ` lines stay comments; with a
/// history of `events` entries, they become code trimming the stream to
/// about that many.
fn script(body: &str, history: Option<u32>) -> String {
    match history {
        None => body.to_string(),
        Some(events) => body
            .replace("--H ", "")
            .replace("HISTORY", &events.to_string()),
    }
}

/// The `redis-server` child, killed and reaped on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `redis-server` on a free loopback port; `None` if it is not on
/// `PATH`.
fn start_server() -> Result<Option<Server>, String> {
    match Process::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
    {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("redis-server --version: {e}")),
        Ok(_) => {}
    }
    // The port is free when we ask; redis-server binds it right after.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let child = Process::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--daemonize", "no", "--loglevel", "warning"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("redis-server: {e}"))?;
    Ok(Some(Server { child, port }))
}

/// Connects, retrying while the server starts (up to 5 s).
fn connect(server: &mut Server) -> Result<Connection, String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", server.port))
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!("redis-server exited: {status}"));
        }
        let err = match client.get_connection() {
            Ok(mut con) => match redis::cmd("PING").query::<String>(&mut con) {
                Ok(_) => return Ok(con),
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(format!("cannot reach redis-server: {err}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The loaded scripts' SHA-1s.
struct Scripts {
    write: String,
    join: String,
    leave: String,
    offer: String,
    poll: String,
}

impl Scripts {
    /// Loads the scripts, with a history of `history` events per room or
    /// none ([`script`]).
    fn load(con: &mut Connection, history: Option<u32>) -> redis::RedisResult<Scripts> {
        let mut load = |body: &str| {
            redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(script(body, history))
                .query::<String>(con)
        };
        Ok(Scripts {
            write: load(WRITE)?,
            join: load(JOIN)?,
            leave: load(LEAVE)?,
            offer: load(OFFER)?,
            poll: load(POLL)?,
        })
    }
}

/// The Redis requests of the mixed workload's steps.
struct Peer<'a> {
    mixed: &'a Mixed,
    scripts: Scripts,
}

impl Peer<'_> {
    fn user(&self, room: usize, user: usize) -> &str {
        &self.mixed.users[room * Mixed::USERS + user]
    }

    /// Appends the requests of one step to `pipe`.
    fn push(&self, pipe: &mut Pipeline, step: &Step) {
        let m = self.mixed;
        let k = |room: usize, what: &str| format!("{{{}}}:{what}", m.rooms[room]);
        let uset = |room: usize, user: &str| format!("{{{}}}:u:{user}", m.rooms[room]);
        match *step {
            Step::Create { room } => {
                pipe.cmd("SET").arg(k(room, "seq")).arg(1).arg("NX");
            }
            Step::Join { room, user } => {
                pipe.cmd("EVALSHA")
                    .arg(&self.scripts.join)
                    .arg(3)
                    .arg(k(room, "m"))
                    .arg(k(room, "seq"))
                    .arg(k(room, "h"))
                    .arg(self.user(room, user));
            }
            Step::Leave { room, user } => {
                let u = self.user(room, user);
                pipe.cmd("EVALSHA")
                    .arg(&self.scripts.leave)
                    .arg(6)
                    .arg(k(room, "m"))
                    .arg(k(room, "v"))
                    .arg(k(room, "o"))
                    .arg(k(room, "seq"))
                    .arg(uset(room, u))
                    .arg(k(room, "h"))
                    .arg(u);
            }
            Step::Write {
                room,
                user,
                ref ops,
            } => {
                let u = self.user(room, user);
                let cmd = pipe
                    .cmd("EVALSHA")
                    .arg(&self.scripts.write)
                    .arg(5)
                    .arg(k(room, "v"))
                    .arg(k(room, "o"))
                    .arg(k(room, "seq"))
                    .arg(uset(room, u))
                    .arg(k(room, "h"))
                    .arg(u);
                for &(key, value) in ops {
                    match value {
                        Some(v) => cmd.arg("s").arg(&m.keys[key]).arg(&m.values[v]),
                        None => cmd.arg("d").arg(&m.keys[key]).arg(""),
                    };
                }
            }
            Step::Read { room } => {
                pipe.cmd("HGETALL").arg(k(room, "v"));
                pipe.cmd("HGETALL").arg(k(room, "o"));
                pipe.cmd("GET").arg(k(room, "seq"));
            }
            Step::Offer {
                room, key, value, ..
            } => {
                pipe.cmd("EVALSHA")
                    .arg(&self.scripts.offer)
                    .arg(4)
                    .arg(k(room, "ql"))
                    .arg(k(room, "qh"))
                    .arg(k(room, "seq"))
                    .arg(k(room, "h"))
                    .arg(Mixed::queue_key(room, key))
                    .arg(&m.values[value]);
            }
            Step::Poll { room, key, .. } => {
                pipe.cmd("EVALSHA")
                    .arg(&self.scripts.poll)
                    .arg(4)
                    .arg(k(room, "ql"))
                    .arg(k(room, "qh"))
                    .arg(k(room, "seq"))
                    .arg(k(room, "h"))
                    .arg(key.map_or_else(String::new, |n| Mixed::queue_key(room, n)));
            }
        }
    }

    /// Runs `steps` in pipelines of [`PIPELINE`].
    fn run(&self, con: &mut Connection, steps: &[Step]) -> redis::RedisResult<()> {
        for chunk in steps.chunks(PIPELINE) {
            let mut pipe = redis::pipe();
            for step in chunk {
                self.push(&mut pipe, step);
            }
            pipe.query::<Vec<redis::Value>>(con)?;
        }
        Ok(())
    }
}

/// A numeric field of `INFO <section>`.
fn info_field(con: &mut Connection, section: &str, field: &str) -> redis::RedisResult<f64> {
    let info: String = redis::cmd("INFO").arg(section).query(con)?;
    let prefix = format!("{field}:");
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN))
}

/// The server's CPU seconds so far (user + system).
fn server_cpu(con: &mut Connection) -> redis::RedisResult<f64> {
    Ok(info_field(con, "cpu", "used_cpu_user")? + info_field(con, "cpu", "used_cpu_sys")?)
}

/// This thread's CPU time.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant
    // that Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Every room as `(attributes key -> (value, owner), members, queue length)`.
type State = Vec<(BTreeMap<String, (String, String)>, BTreeSet<String>, usize)>;

fn engine_state(engine: &mut Engine, mixed: &Mixed) -> State {
    mixed
        .rooms
        .iter()
        .map(|id| {
            let mut attrs = BTreeMap::new();
            engine_visit_attributes(engine, id, |k, v, o, _| {
                attrs.insert(k.to_string(), (v.to_string(), o.to_string()));
            });
            let members = engine
                .room(id)
                .map(|v| v.members().iter().map(|u| u.to_string()).collect())
                .unwrap_or_default();
            let queue = match engine.handle(
                roomstate_benches::workload::NOW,
                Command::QueueList {
                    room: id.as_str().into(),
                },
            ) {
                Ok(Success::Elements(r)) => r.elements.len(),
                _ => 0,
            };
            (attrs, members, queue)
        })
        .collect()
}

fn redis_state(con: &mut Connection, mixed: &Mixed) -> redis::RedisResult<State> {
    let mut out = Vec::new();
    for id in &mixed.rooms {
        let vals: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(format!("{{{id}}}:v"))
            .query(con)?;
        let mut owners: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(format!("{{{id}}}:o"))
            .query(con)?;
        let attrs = vals
            .into_iter()
            .map(|(k, v)| {
                let o = owners.remove(&k).unwrap_or_default();
                (k, (v, o))
            })
            .collect();
        let members: Vec<String> = redis::cmd("HKEYS").arg(format!("{{{id}}}:m")).query(con)?;
        let queue: usize = redis::cmd("LLEN").arg(format!("{{{id}}}:ql")).query(con)?;
        out.push((attrs, members.into_iter().collect(), queue));
    }
    Ok(out)
}

/// Server CPU per step over the timed steps, and the final state of one
/// round (flushed and set up first).
fn redis_round(con: &mut Connection, peer: &Peer<'_>) -> redis::RedisResult<f64> {
    redis::cmd("FLUSHALL").query::<()>(con)?;
    peer.run(con, &peer.mixed.setup)?;
    let before = server_cpu(con)?;
    peer.run(con, &peer.mixed.steps)?;
    let after = server_cpu(con)?;
    Ok((after - before) * 1e6 / peer.mixed.steps.len() as f64)
}

/// Engine CPU per step over the same timed steps, with the profile's
/// default history or none.
fn engine_round(mixed: &Mixed, history: bool) -> (f64, Engine) {
    let mut engine = mixed.engine_with(bench_profile_with_history(history));
    let inputs = mixed.engine_inputs();
    let (mut events, mut reply): (Vec<Event>, Vec<u8>) = (Vec::new(), Vec::with_capacity(4096));
    let start = thread_cpu();
    let ok = run_engine(&mut engine, inputs, &mut events, &mut reply);
    let cpu = thread_cpu() - start;
    assert!(ok > mixed.steps.len() / 2, "most steps succeed: {ok}");
    (cpu.as_secs_f64() * 1e6 / mixed.steps.len() as f64, engine)
}

/// `used_memory` growth per attribute while loading the grid through the
/// write script (each owner sets its keys of the room in one write).
fn redis_heap_per_attr(con: &mut Connection, scripts: &Scripts) -> redis::RedisResult<f64> {
    redis::cmd("FLUSHALL").query::<()>(con)?;
    let grid = Grid::new(GRID_ROOMS, 20);
    let before = info_field(con, "memory", "used_memory")?;
    for rooms in (0..GRID_ROOMS)
        .collect::<Vec<_>>()
        .chunks(PIPELINE / OWNERS_PER_ROOM)
    {
        let mut pipe = redis::pipe();
        for &r in rooms {
            let id = &grid.rooms[r];
            pipe.cmd("SET").arg(format!("{{{id}}}:seq")).arg(1).ignore();
            for o in 0..OWNERS_PER_ROOM {
                let user = &grid.users[grid.user(r, o)];
                let cmd = pipe
                    .cmd("EVALSHA")
                    .arg(&scripts.write)
                    .arg(5)
                    .arg(format!("{{{id}}}:v"))
                    .arg(format!("{{{id}}}:o"))
                    .arg(format!("{{{id}}}:seq"))
                    .arg(format!("{{{id}}}:u:{user}"))
                    .arg(format!("{{{id}}}:h"))
                    .arg(user);
                for k in (o..grid.keys_per_room).step_by(OWNERS_PER_ROOM) {
                    cmd.arg("s")
                        .arg(&grid.keys[k])
                        .arg(&grid.values[(r + k) % grid.values.len()]);
                }
                cmd.ignore();
            }
        }
        pipe.query::<()>(con)?;
    }
    let after = info_field(con, "memory", "used_memory")?;
    let attrs: usize = redis::cmd("HLEN")
        .arg(format!("{{{}}}:v", grid.rooms[GRID_ROOMS - 1]))
        .query(con)?;
    assert_eq!(attrs, 20, "the grid loaded");
    Ok((after - before) / (GRID_ROOMS * 20) as f64)
}

fn main() -> ExitCode {
    let mut server = match start_server() {
        Ok(Some(server)) => server,
        Ok(None) => {
            println!("redis_peer: redis-server is not on PATH; skipped (install it: apt-get install -y redis-server)");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("redis_peer: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(&mut server) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("redis_peer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(server: &mut Server) -> Result<(), String> {
    let started = Instant::now();
    let mut con = connect(server)?;
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query(&mut con)
        .map_err(|e| e.to_string())?;
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .map_or_else(|| "unknown".to_string(), str::to_string);
    let mixed = Mixed::generate(SEED, ROOMS, STEPS);
    let events = bench_profile_with_history(true).limits.history_events;
    let plain = Variant::measure(&mut con, &mixed, None)?;
    let history = Variant::measure(&mut con, &mixed, Some(events))?;
    let scripts = Scripts::load(&mut con, None).map_err(|e| e.to_string())?;
    let heap = redis_heap_per_attr(&mut con, &scripts).map_err(|e| e.to_string())?;

    println!("redis_version: {version}");
    println!("redis_steps_per_round: {}", mixed.steps.len());
    plain.print("");
    println!("redis_heap_bytes_per_attr: {heap:.1}");
    history.print("_with_history");
    eprintln!(
        "redis_peer: {:.1} s in all; states agree; every room's stream ends at its number",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One variant of the comparison, measured: without a catch-up history on
/// either side, or with one on both (Redis: a stream per room trimmed to
/// about the engine's default number of events; the engine: its default
/// history).
struct Variant {
    /// Per round: Redis's figure, and the median of the engine's runs.
    rounds: Vec<(f64, f64)>,
    /// Every engine run, for the log.
    engine_runs: Vec<f64>,
}

impl Variant {
    /// [`ROUNDS`] rounds of Redis then [`ENGINE_RUNS`] of the engine, then
    /// the check that both ended in the same state, and with a history,
    /// that every room's stream ends at the room's sequence number.
    fn measure(
        con: &mut Connection,
        mixed: &Mixed,
        history: Option<u32>,
    ) -> Result<Variant, String> {
        let scripts = Scripts::load(con, history).map_err(|e| e.to_string())?;
        let peer = Peer { mixed, scripts };
        let mut rounds = Vec::new();
        let mut engine_runs = Vec::new();
        let mut last_engine = None;
        for _ in 0..ROUNDS {
            let redis = redis_round(con, &peer).map_err(|e| e.to_string())?;
            let mut runs = Vec::new();
            for _ in 0..ENGINE_RUNS {
                let (us, engine) = engine_round(mixed, history.is_some());
                runs.push(us);
                last_engine = Some(engine);
            }
            engine_runs.extend(&runs);
            rounds.push((redis, median(runs)));
        }
        let mut engine = last_engine.ok_or("no round ran")?;
        let expected = engine_state(&mut engine, mixed);
        let got = redis_state(con, mixed).map_err(|e| e.to_string())?;
        if let Some(r) = (0..expected.len()).find(|&r| expected[r] != got[r]) {
            return Err(format!(
                "Redis and the engine disagree on room {}: engine {:?}, redis {:?}",
                mixed.rooms[r], expected[r], got[r]
            ));
        }
        if let Some(events) = history {
            check_streams(con, mixed, events).map_err(|e| e.to_string())??;
        }
        Ok(Variant {
            rounds,
            engine_runs,
        })
    }

    /// The variant's lines, their names ending in `suffix`: the medians of
    /// each side's rounds, and the median of the rounds' ratios (a round's
    /// two sides run back to back, so a slow spell of the VM that slows
    /// both cancels out of its ratio).
    fn print(&self, suffix: &str) {
        let redis: Vec<f64> = self.rounds.iter().map(|r| r.0).collect();
        let engine: Vec<f64> = self.rounds.iter().map(|r| r.1).collect();
        let ratios: Vec<f64> = self.rounds.iter().map(|(r, e)| r / e).collect();
        println!(
            "redis_server_cpu_us_per_cmd{suffix}: {:.3}",
            median(redis.clone())
        );
        println!("engine_cpu_us_per_cmd{suffix}: {:.3}", median(engine));
        println!("redis_cpu_ratio{suffix}: {:.1}", median(ratios.clone()));
        eprintln!(
            "redis_peer{suffix}: rounds redis {redis:.3?} us per step, ratios {ratios:.1?}; \
             engine runs {:.3?} us per step",
            self.engine_runs
        );
    }
}

/// With a history: every room's stream holds at least one entry and at
/// most a trimmed stream's slack over `events`, and its newest entry is
/// the room's newest change (its `seq` field is the room's number).
fn check_streams(
    con: &mut Connection,
    mixed: &Mixed,
    events: u32,
) -> redis::RedisResult<Result<(), String>> {
    for id in &mixed.rooms {
        let len: u64 = redis::cmd("XLEN").arg(format!("{{{id}}}:h")).query(con)?;
        let seq: u64 = redis::cmd("GET").arg(format!("{{{id}}}:seq")).query(con)?;
        let newest: Vec<(String, Vec<String>)> = redis::cmd("XREVRANGE")
            .arg(format!("{{{id}}}:h"))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query(con)?;
        let last = newest
            .first()
            .and_then(|(_, fields)| fields.get(1))
            .and_then(|s| s.parse::<u64>().ok());
        // `MAXLEN ~` trims whole stream nodes (100 entries by default).
        if len == 0 || len > u64::from(events) + 100 || last != Some(seq) {
            return Ok(Err(format!(
                "room {id}: its stream holds {len} entries, the newest of seq {last:?}; the room is at {seq}"
            )));
        }
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::{script, JOIN, LEAVE, OFFER, POLL, WRITE};

    /// Without history a script runs as written, its `--H ` lines
    /// comments; with one, each of those lines is code, and every script
    /// appends to the stream, trimmed to the number given.
    #[test]
    fn the_history_lines_are_comments_or_code() {
        for body in [WRITE, JOIN, LEAVE, OFFER, POLL] {
            assert_eq!(script(body, None), body);
            let xadds = body.lines().filter(|l| l.contains("XADD")).count();
            assert_eq!(xadds, 1, "{body}");
            for line in body
                .lines()
                .filter(|l| l.contains("XADD") || l.contains("HISTORY"))
            {
                assert!(line.starts_with("--H "), "{line}");
            }
            let with = script(body, Some(256));
            assert!(!with.contains("--H") && !with.contains("HISTORY"), "{with}");
            assert!(with.contains("'MAXLEN', '~', 256, '*'"), "{with}");
            assert_eq!(
                with.lines().count(),
                body.lines().count(),
                "only the markers go"
            );
        }
    }
}
